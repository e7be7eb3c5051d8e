"""Fault knobs the simulator consults before answering: HTTP errors, resets, slow and broken bodies."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["Fault", "Faults"]

FaultKind = Literal[
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "http_429",
    "reset_before_record",
    "reset_after_record",
    "slow",
    "malformed_json",
    "html",
    "empty",
]
Endpoint = Literal["submit", "fetch", "list", "task_list", "image", "any"]


@dataclass
class Fault:
    """One injected fault: after skipping `after` matching requests, fires for the next `times`
    of them, or at `rate`, or always."""

    kind: FaultKind
    endpoint: Endpoint
    times: int | None
    rate: float | None
    delay: float
    """Seconds to wait before answering (after the handler when it runs)."""
    after: int = 0
    """Matching requests to let through first: with `times`, a scripted schedule."""
    seen: int = 0
    fired: int = 0


class Faults:
    """The fault set of one `FakeProxy`; rates draw from the proxy's seeded RNG."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.active: list[Fault] = []
        """Faults still armed, consulted in insertion order; the first that fires wins."""
        self.callback_drop_rate = 0.0
        """Probability that a callback is not sent at all."""
        self.callback_duplicate_rate = 0.0
        """Probability that a callback is sent twice."""
        self.callback_delay = 0.0
        """Maximum random delay in seconds before each callback."""
        self.callback_reorder = False
        """Send each callback independently after a random delay, so order is not kept."""

    def add(
        self,
        kind: FaultKind,
        endpoint: Endpoint = "any",
        *,
        times: int | None = None,
        rate: float | None = None,
        delay: float = 0.0,
        after: int = 0,
    ) -> Fault:
        """Arm a fault; with neither `times` nor `rate` it fires on every matching request.

        `after=2, times=1` fires on exactly the third matching request: a scripted schedule.
        """
        if kind not in get_args(FaultKind) or endpoint not in get_args(Endpoint):
            raise ValueError(f"unknown fault {kind!r} or endpoint group {endpoint!r}")
        if (times is not None and times < 1) or (rate is not None and not 0.0 < rate <= 1.0) or after < 0:
            raise ValueError("times must be >= 1, rate in (0, 1] and after >= 0")
        fault = Fault(kind, endpoint, times, rate, delay, after)
        self.active.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm every fault, callback knobs included."""
        self.active.clear()
        self.callback_drop_rate = self.callback_duplicate_rate = self.callback_delay = 0.0
        self.callback_reorder = False

    def chance(self, rate: float) -> bool:
        """True with probability `rate`, drawn once from the proxy's seeded RNG (no draw at 0)."""
        return rate > 0.0 and self._rng.random() < rate

    def pick(self, group: str) -> Fault | None:
        """The armed fault a request of endpoint `group` gets (counted as fired), or None."""
        for fault in self.active:
            if fault.endpoint not in ("any", group):
                continue
            fault.seen += 1
            if fault.seen <= fault.after:
                continue
            if fault.rate is not None and not self.chance(fault.rate):
                continue
            fault.fired += 1
            if fault.times is not None and fault.fired >= fault.times:
                self.active.remove(fault)
            return fault
        return None
