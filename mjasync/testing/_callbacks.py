"""notifyHook delivery: fire-and-forget posts from one session, like the real servers (no retries)."""

from __future__ import annotations

import asyncio
import functools
import json
import random
from typing import Any, Final

import aiohttp

from ._faults import Faults
from ._stats import FakeStats

__all__ = ["CallbackSender"]

_REORDER_JITTER: Final = 0.05
"""Seconds of random delay used by `callback_reorder` when no `callback_delay` is set."""


class CallbackSender:
    """Posts task JSON to hook URLs in background tasks; per job in order unless reordering."""

    def __init__(self, stats: FakeStats, faults: Faults, rng: random.Random) -> None:
        self._stats = stats
        self._faults = faults
        self._rng = rng
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[str, asyncio.Task[None]] = {}

    def send(self, url: str, job_id: str, task: dict[str, Any]) -> None:
        """Schedule the post of a snapshot of `task`; never blocks the caller."""
        faults = self._faults
        if faults.chance(faults.callback_drop_rate):
            self._stats.callbacks_dropped += 1
            return
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        body = json.dumps(task, ensure_ascii=False).encode()
        for _ in range(2 if faults.chance(faults.callback_duplicate_rate) else 1):
            if faults.callback_reorder:
                delay = self._rng.uniform(0.0, faults.callback_delay or _REORDER_JITTER)
                after = None
            else:
                delay = self._rng.uniform(0.0, faults.callback_delay)
                after = self._last.get(job_id)
            sender = asyncio.get_running_loop().create_task(self._post(url, body, delay, after))
            self._last[job_id] = sender
            self._tasks.add(sender)
            sender.add_done_callback(functools.partial(self._forget, job_id))

    async def close(self) -> None:
        """Cancel the pending posts, wait for them, close the session."""
        for sender in self._tasks:
            sender.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _forget(self, job_id: str, sender: asyncio.Task[None]) -> None:
        self._tasks.discard(sender)
        if self._last.get(job_id) is sender:
            del self._last[job_id]

    async def _post(self, url: str, body: bytes, delay: float, after: asyncio.Task[None] | None) -> None:
        if after is not None:
            await asyncio.wait({after})
        await asyncio.sleep(delay)
        assert self._session is not None
        try:
            headers = {"Content-Type": "application/json"}
            async with self._session.post(url, data=body, headers=headers) as response:
                delivered = response.status < 300
        except (aiohttp.ClientError, TimeoutError, ValueError):
            delivered = False
        if delivered:
            self._stats.callbacks_sent += 1
        else:
            self._stats.callbacks_failed += 1
