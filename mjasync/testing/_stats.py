"""What the simulator saw: request counters and the request log, for test assertions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FakeStats", "RecordedRequest"]


@dataclass
class FakeStats:
    """Counters kept by a `FakeProxy`; plain mutable attributes, cleared by `reset()`."""

    requests: Counter[str] = field(default_factory=Counter)
    """Requests per route pattern, e.g. ``"GET /mj/task/{id}/fetch"``; faulted and refused ones too."""
    accepted_submits: int = 0
    """Jobs recorded (a task id was issued)."""
    submits_by_state: Counter[str] = field(default_factory=Counter)
    """Recorded jobs per exact `state` value the client sent (``""`` when absent)."""
    list_batches: list[int] = field(default_factory=list)
    """The number of ids asked in each list-by-condition call."""
    callbacks_sent: int = 0
    """Callbacks the receiver answered with a 2xx."""
    callbacks_dropped: int = 0
    """Callbacks skipped on purpose by the drop-rate fault."""
    callbacks_failed: int = 0
    """Callbacks that raised or got a non-2xx answer (never retried)."""

    @property
    def total_requests(self) -> int:
        """All counted requests."""
        return sum(self.requests.values())

    def reset(self) -> None:
        """Clear every counter."""
        self.requests.clear()
        self.submits_by_state.clear()
        self.list_batches.clear()
        self.accepted_submits = self.callbacks_sent = 0
        self.callbacks_dropped = self.callbacks_failed = 0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived; secret header values are replaced by ``"***"``."""

    method: str
    route: str
    path: str
    json: Any | None
    headers: Mapping[str, str]
