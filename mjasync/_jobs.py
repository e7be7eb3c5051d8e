"""A client's side of its store: its replica name and lease, final snapshots, forgetting."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Coroutine
from typing import Any, Final

from ._exceptions import MjError
from ._logging import logger
from ._models import TaskInfo
from ._store import JobRecord, Store

__all__ = ["DEFAULT_RETENTION", "Jobs"]

DEFAULT_RETENTION: Final = 7 * 24 * 3600.0
"""Seconds an ended record stays (unless forgotten first): 7 days."""


class Jobs:
    """The store as one client (and its copies) uses it: renews the replica's lease and purges
    old records while it runs, writes final snapshots in batches, and knows what it follows."""

    def __init__(self, store: Store, replica: str | None, retention: float) -> None:
        self.store = store
        self.owner = replica if replica is not None else f"mja-{secrets.token_hex(6)}"
        self.retention = retention
        self.followed: set[str] = set()
        """Tags this client has handed out a Task for (resume() skips them)."""
        self._ended: list[TaskInfo] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._renewing: asyncio.Task[None] | None = None

    def started(self) -> None:
        """Renew the lease from now on (called on first use, inside the running loop)."""
        if self._renewing is None:
            self._renewing = self._spawn(self._renew())

    def ended(self, info: TaskInfo) -> None:
        """A followed task ended: its snapshot goes to the store with the others of this moment."""
        self._ended.append(info)
        if len(self._ended) == 1:
            self._spawn(self._write_ended())

    async def claim(self) -> list[JobRecord]:
        self.started()
        return await self.store.claim(self.owner)

    async def forget(self, task_id: str) -> None:
        await self.store.forget(task_id)

    async def close(self) -> None:
        """Stop renewing; snapshots already queued are written first. Records stay."""
        if self._renewing is not None:
            self._renewing.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _write_ended(self) -> None:
        await asyncio.sleep(0)  # let the rest of this tick's endings join
        batch, self._ended = self._ended, []
        try:
            await self.store.finish(batch, time.time())
        except MjError as exc:
            logger.warning("final snapshots of %d task(s) not stored: %s", len(batch), exc)

    async def _renew(self) -> None:
        while True:
            try:
                await self.store.renew(self.owner)
                await self.store.purge(time.time() - self.retention)
            except MjError as exc:
                logger.warning("lease of replica %s not renewed: %s", self.owner, exc)
            await asyncio.sleep(self.store.lease / 3)
