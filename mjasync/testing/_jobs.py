"""Simulated jobs: their per-dialect task JSON and the one clock that moves them along."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

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
_UPSCALED: Final = frozenset({"UPSCALE", "UPSCALE_HD"})
VIDEO_ACTIONS: Final = frozenset({"VIDEO", "VIDEO_EXTEND"})
_NO_BUTTONS: Final = frozenset({"DESCRIBE", "SHORTEN", "SWAP_FACE", "EDIT", "RETEXTURE"} | VIDEO_ACTIONS)


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

    def task_json(self) -> dict[str, Any]:
        """The task as this dialect's fetch, list and callbacks show it (protocol.md 12.3)."""
        properties: dict[str, Any] = {"finalPrompt": self.final_prompt, "messageHash": self.hash}
        properties.update(self.dialect.instance)
        if self.notify_hook:
            properties["notifyHook"] = self.notify_hook
        if self.custom_id and self.dialect.name == "extended":
            properties["custom_id"] = self.custom_id
        task: dict[str, Any] = {
            "id": self.id,
            "action": self.action,
            "status": self.status,
            "prompt": self.prompt,
            "promptEn": self.prompt,
            "description": self.description,
            "state": self.state,
            "submitTime": self.submit_time,
            "startTime": self.start_time,
            "finishTime": self.finish_time,
            "imageUrl": self.image_url,
            "progress": self.progress,
            "failReason": self.fail_reason,
            "properties": properties,
        }
        if self.dialect.name == "reference":
            return task
        done = self.status in TERMINAL
        if self.dialect.name == "extended":
            url = self.image_url if self.status == "SUCCESS" else None
            used = None
            if done and self.start_time is not None and self.finish_time is not None:
                used = f"{(self.finish_time - self.start_time) / 1000:.2f} s"
            task.update(
                status=None if self.status == "NOT_START" else self.status,
                isCompleted=done,
                botType=self.bot_type,
                parentId=self.parent_id,
                mode=self.mode,
                buttons=self.buttons,
                imageUrls=[{"url": url, "thumbnail": url}] if url else [],
                displays={"status": self.status},
                useTime=used,
            )
            if self.action in VIDEO_ACTIONS and url:
                video = f"https://cdn.midjourney.com/video/{self.hash}/0.mp4"
                task.update(videoUrl=video, videoUrls=[{"url": video}])
            return task
        task = {k: "" if v is None else v for k, v in task.items()}
        task.update(
            status="" if self.status == "NOT_START" else self.status,
            description=self.submit_text,
            startTime=self.start_time or 0,
            finishTime=self.finish_time or 0,
            properties={"finalPrompt": self.final_prompt, "finalZhPrompt": ""},
            buttons=self.buttons,
            customId=self.custom_id,
            botType="",
            maskBase64="",
            mode=self.mode,
            cost=0.05,
        )
        return task


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
