"""Simulated jobs: their state, their buttons and the one clock that moves them along."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

__all__ = [
    "DESCRIPTION",
    "MODAL_BUTTONS",
    "REMIX_BUTTONS",
    "STEPS",
    "TERMINAL",
    "VIDEO_ACTIONS",
    "FakeJob",
    "JobBoard",
    "now_ms",
    "shortened",
]

if TYPE_CHECKING:
    from ._dialects import Dialect

STEPS: Final = (0, 15, 31, 46, 62, 77, 93, 100)
"""Progress percentages in the order real servers report them."""
TERMINAL: Final = frozenset({"SUCCESS", "FAILURE"})

_GRID_BUTTONS: Final = (
    *((f"MJ::JOB::upsample::{i}::{{}}", "", f"U{i}") for i in range(1, 5)),
    ("MJ::JOB::reroll::0::{}::SOLO", "🔄", ""),
    *((f"MJ::JOB::variation::{i}::{{}}", "", f"V{i}") for i in range(1, 5)),
)
_UPSCALE_BUTTONS: Final = (
    ("MJ::JOB::upsample_v6_2x_subtle::1::{}::SOLO", "", "Upscale (Subtle)"),
    ("MJ::JOB::upsample_v6_2x_creative::1::{}::SOLO", "", "Upscale (Creative)"),
    ("MJ::JOB::low_variation::1::{}::SOLO", "🪄", "Vary (Subtle)"),
    ("MJ::JOB::high_variation::1::{}::SOLO", "🪄", "Vary (Strong)"),
    ("MJ::Inpaint::1::{}::SOLO", "🖌️", "Vary (Region)"),
    ("MJ::Outpaint::50::1::{}::SOLO", "🔍", "Zoom Out 2x"),
    ("MJ::Outpaint::75::1::{}::SOLO", "🔍", "Zoom Out 1.5x"),
    ("MJ::CustomZoom::{}", "🔍", "Custom Zoom"),
    ("MJ::JOB::pan_left::1::{}::SOLO", "⬅️", ""),
    ("MJ::JOB::pan_right::1::{}::SOLO", "➡️", ""),
    ("MJ::JOB::pan_up::1::{}::SOLO", "⬆️", ""),
    ("MJ::JOB::pan_down::1::{}::SOLO", "⬇️", ""),
)
MODAL_BUTTONS: Final = ("MJ::Inpaint::", "MJ::CustomZoom::")
"""Buttons whose task always waits in MODAL; relays keep their code 21."""
REMIX_BUTTONS: Final = (
    "MJ::JOB::variation::",
    "MJ::JOB::low_variation::",
    "MJ::JOB::high_variation::",
    "MJ::JOB::reroll::",
    "MJ::JOB::pan_",
)
"""Buttons whose task waits in MODAL when remix mode is on."""
DESCRIPTION: Final = "\n\n".join(
    f"{n} a simulated picture, flat colour blocks, {style} --ar 1:1"
    for n, style in zip(("1️⃣", "2️⃣", "3️⃣", "4️⃣"), ("minimal", "bauhaus", "pop art", "tiles"), strict=True)
)
"""What a describe job answers: four prompts for the image."""
_UPSCALED: Final = frozenset({"UPSCALE", "UPSCALE_HD"})
VIDEO_ACTIONS: Final = frozenset({"VIDEO", "VIDEO_EXTEND"})
_NO_BUTTONS: Final = frozenset({"DESCRIBE", "SHORTEN", "SWAP_FACE", "EDIT", "RETEXTURE"} | VIDEO_ACTIONS)


def shortened(prompt: str) -> str:
    """A shorten analysis in the markdown shape Midjourney answers with."""
    words = prompt.split()
    options = [" ".join(words[: max(1, len(words) * n // 5)]) for n in range(5, 0, -1)]
    numbers = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣")
    return "**IMPORTANT TOKENS**\n" + ", ".join(words) + "\n\n**SHORTENED PROMPTS**\n" + "\n".join(
        f"{n} {option}" for n, option in zip(numbers, options, strict=True)
    )


def now_ms() -> int:
    """Wall-clock epoch milliseconds, as the servers stamp tasks."""
    return time.time_ns() // 1_000_000


@dataclass(eq=False, slots=True)
class FakeJob:
    """A recorded job; `task_json()` renders it as this dialect's fetch returns it."""

    id: str
    action: str
    prompt: str
    state: str | None
    description: str
    """The slash command (``/imagine cat``); relays show `submit_text` instead."""
    dialect: Dialect
    base_url: str
    hash: str
    """The job UUID behind its button customIds and image colours."""
    notify_hook: str | None = None
    bot_type: str = "MID_JOURNEY"
    mode: str = "FAST"
    parent_id: str | None = None
    custom_id: str = ""
    """The button pressed to create this job (actions only)."""
    final_prompt: str = ""
    submit_text: str = ""
    fails: bool = False
    stuck: bool = False
    status: str = "NOT_START"
    step: int = -1
    """Index into `STEPS`; -1 before it starts."""
    submit_time: int = field(default_factory=now_ms)
    start_time: int | None = None
    finish_time: int | None = None
    fail_reason: str | None = None
    preview_ns: int = 0
    timeout_at: float | None = None
    polled_at: float = 0.0
    """Monotonic time of a relay's first upstream poll (`upstream_poll_seconds` after the submit)."""

    @property
    def progress(self) -> str | None:
        """``"46%"``; ``""`` once failed; None before it starts."""
        if self.status == "FAILURE":
            return ""
        return None if self.step < 0 else f"{STEPS[self.step]}%"

    @property
    def seed(self) -> str:
        """The image seed image-seed answers, derived from the job's hash."""
        return str(int(self.hash[:8], 16))

    @property
    def image_url(self) -> str | None:
        """The fake's own PNG route: a preview while running, the result on SUCCESS."""
        url = f"{self.base_url}/mj/image/{self.id}"
        if self.status == "SUCCESS":
            return url
        return f"{url}?rand={self.preview_ns}" if self.status == "IN_PROGRESS" else None

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """The buttons a SUCCESS shows (computed, so 10,000 jobs stay small)."""
        if self.status != "SUCCESS" or self.action in _NO_BUTTONS:
            return []
        specs = _UPSCALE_BUTTONS if self.action in _UPSCALED else _GRID_BUTTONS
        return [
            {"customId": c.format(self.hash), "emoji": e, "label": label, "type": 2, "style": 2}
            for c, e, label in specs
        ]

    @property
    def upstream_polled(self) -> bool:
        """True once a relay has polled its upstream for this job; a MODAL job counts as polled."""
        return self.status == "MODAL" or time.monotonic() >= self.polled_at

    def finished_within(self, seconds: float) -> bool:
        """True while less than `seconds` have passed since the job finished."""
        return self.finish_time is not None and now_ms() - self.finish_time < seconds * 1000

    def task_json(self) -> dict[str, Any]:
        """The task as this dialect's fetch, list and callbacks show it (protocol.md 12.3)."""
        return self.dialect.task_json(self)


class JobBoard:
    """All jobs, the running slots and the waiting line; one ticker moves due jobs a step."""

    def __init__(
        self,
        *,
        step_seconds: float,
        server_timeout: float | None,
        concurrency: int | None,
        queue_size: int,
        timeout_text: str,
        on_change: Callable[[FakeJob], None],
    ) -> None:
        self.jobs: dict[str, FakeJob] = {}
        self._step_seconds = step_seconds
        self._server_timeout = server_timeout
        self._concurrency = concurrency
        self._queue_size = queue_size
        self._timeout_text = timeout_text
        self._on_change = on_change
        self._due: list[tuple[float, int, FakeJob]] = []
        self._order = itertools.count()
        self._waiting: deque[FakeJob] = deque()
        self._running: set[FakeJob] = set()

    def new_id(self, rng: random.Random) -> str:
        """A task id in the servers' shape (epoch ms + 3 digits), unused on this board."""
        while True:
            task_id = f"{now_ms()}{rng.randrange(1000):03d}"
            if task_id not in self.jobs:
                return task_id

    def admit(self, job: FakeJob) -> int | None:
        """Take a running slot (0) or a waiting place (its 1-based position); None = queue full."""
        if self._has_slot():
            self._run(job, time.monotonic())
            return 0
        if len(self._waiting) >= self._queue_size:
            return None
        self._waiting.append(job)
        return len(self._waiting)

    def cancel(self, job: FakeJob, reason: str) -> bool:
        """End an unfinished job in FAILURE with `reason` (the extended server's cancel); False if done."""
        if job.status in TERMINAL:
            return False
        if job in self._waiting:
            self._waiting.remove(job)
        self._finish(job, time.monotonic(), reason)
        return True

    def _has_slot(self) -> bool:
        return self._concurrency is None or len(self._running) < self._concurrency

    def _run(self, job: FakeJob, due: float) -> None:
        self._running.add(job)
        self._schedule(job, due)

    async def run(self, tick: float) -> None:
        """The ticker: every `tick` seconds advance the jobs that are due (only those)."""
        while True:
            await asyncio.sleep(tick)
            self.advance(time.monotonic())

    def advance(self, now: float) -> None:
        """Apply every job step due by `now`, in due order."""
        while self._due and self._due[0][0] <= now:
            due, _, job = heapq.heappop(self._due)
            self._step(job, due)

    def _schedule(self, job: FakeJob, due: float) -> None:
        heapq.heappush(self._due, (due, next(self._order), job))

    def _step(self, job: FakeJob, due: float) -> None:
        if job.status in TERMINAL:  # cancelled while a step was pending
            return
        if job.timeout_at is not None and due >= job.timeout_at:
            self._finish(job, due, self._timeout_text)
            return
        job.step += 1
        last = len(STEPS) - 1
        if job.step == last:
            self._finish(job, due, self._timeout_text if job.fails else None)
            return
        if job.step == 0:
            job.status, job.start_time = "SUBMITTED", now_ms()
            if self._server_timeout is not None:
                job.timeout_at = due + self._server_timeout
        else:
            job.status, job.preview_ns = "IN_PROGRESS", time.time_ns()
        following = math.inf if job.stuck and job.step == last - 1 else due + self._step_seconds
        following = min(following, job.timeout_at or math.inf)
        if following < math.inf:
            self._schedule(job, following)
        self._on_change(job)

    def _finish(self, job: FakeJob, due: float, fail_reason: str | None) -> None:
        job.status = "SUCCESS" if fail_reason is None else "FAILURE"
        job.fail_reason, job.finish_time = fail_reason, now_ms()
        self._running.discard(job)
        self._on_change(job)
        while self._waiting and self._has_slot():
            self._run(self._waiting.popleft(), due)
