"""A client's side of its store: replica name and lease, final snapshots, forgetting, the bus."""

from __future__ import annotations

import asyncio
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, Final

from ._exceptions import MjError
from ._logging import logger
from ._models import TaskInfo
from ._store import Bus, JobRecord, Store

__all__ = ["DEFAULT_RETENTION", "Jobs"]

DEFAULT_RETENTION: Final = 7 * 24 * 3600.0
"""Seconds an ended or forgotten record stays (its idempotency key with it): 7 days."""
BUS_RETRY: Final = 1.0
"""Seconds before subscribing to the replicas' bus again after its connection failed."""


class Jobs:
    """The store as one client (and its copies) uses it: renews the replica's lease and purges
    old records while it runs, writes final snapshots in batches, knows what it follows, and
    (when the store is a Bus) carries callbacks between replicas: `relay` gets the others'."""

    def __init__(
        self, store: Store, replica: str | None, retention: float, *, relay: Callable[[bytes], None]
    ) -> None:
        self.store = store
        self._relay = relay
        self.owner = replica if replica is not None else f"mja-{secrets.token_hex(6)}"
        self.retention = retention
        self.followed: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
        """Tag -> the Task handed out for it while the application holds it: `resume()` skips
        those, and hands a dropped one (its handling failed, say) out again."""
        self._ended: list[TaskInfo] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._renewing: asyncio.Task[None] | None = None
        self._listening: asyncio.Task[None] | None = None
        self._later: set[asyncio.Future[None]] = set()
        """Writes not waited for by whoever asked (see `later`)."""

    def started(self) -> None:
        """Renew the lease, and hear the other replicas, from now on (called on first use, inside
        the running loop)."""
        if self._renewing is None:
            self._renewing = self._spawn(self._renew())
            if isinstance(self.store, Bus):
                self._listening = self._spawn(self._listen(self.store))

    def publish(self, message: bytes) -> None:
        """Hand a callback for a task nothing here waits for to the other replicas."""
        if isinstance(self.store, Bus):
            self._spawn(self._publish(self.store, message))

    def ended(self, info: TaskInfo) -> None:
        """A followed task ended: its snapshot goes to the store with the others of this moment."""
        self._ended.append(info)
        if len(self._ended) == 1:
            self._spawn(self._write_ended())

    def later(self, write: Awaitable[None], tag: str) -> None:
        """Let a store write go on without its caller (the task id once accepted: the submit
        returns without that round trip); the reads and writes here that depend on it wait for
        it first. A failure is logged: the record keeps its tag, which `resume()` settles."""
        future = asyncio.ensure_future(write)  # a store's future as it is; a coroutine as a task
        if future.done():  # MemoryStore's: nothing to wait for
            self._written_one(tag, future)
            return
        self._later.add(future)
        future.add_done_callback(partial(self._written_one, tag))

    def _written_one(self, tag: str, future: asyncio.Future[None]) -> None:
        self._later.discard(future)
        error = None if future.cancelled() else future.exception()
        if error is not None:
            logger.warning("the record of tag %s was not updated: %s", tag, error)

    async def claim(self) -> list[JobRecord]:
        self.started()
        await self._written()
        return await self.store.claim(self.owner)

    async def forget(self, name: str) -> None:
        """Mark the records of a task id or state tag handled (their keys hold until purged)."""
        await self._written()
        await self.store.forget(name, time.time())

    async def _written(self) -> None:
        """Wait for the writes handed to `later` so far."""
        if self._later:
            await asyncio.gather(*self._later, return_exceptions=True)

    async def close(self) -> None:
        """Stop renewing; snapshots already queued are written first. Records stay."""
        for task in (self._renewing, self._listening):
            if task is not None:
                task.cancel()
        await self._written()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _write_ended(self) -> None:
        await asyncio.sleep(0)  # let the rest of this tick's endings join
        await self._written()  # the task ids first: finish finds records by them
        batch, self._ended = self._ended, []
        try:
            await self.store.finish(batch, time.time())
        except MjError as exc:
            logger.warning("final snapshots of %d task(s) not stored: %s", len(batch), exc)

    async def _publish(self, bus: Bus, message: bytes) -> None:
        try:
            await bus.publish(message)
        except MjError as exc:
            logger.warning("a callback was not passed on to the other replicas: %s", exc)

    async def _listen(self, bus: Bus) -> None:
        while True:
            try:
                async for message in bus.subscribe():
                    self._relay(message)
            except MjError as exc:
                if _cancelling():
                    return
                logger.warning("replica bus lost (%s); subscribing again in %.0f s", exc, BUS_RETRY)
            await asyncio.sleep(BUS_RETRY)

    async def _renew(self) -> None:
        while True:
            try:
                await self.store.renew(self.owner)
                await self.store.purge(time.time() - self.retention)
            except MjError as exc:
                if _cancelling():
                    return
                logger.warning("lease of replica %s not renewed: %s", self.owner, exc)
            await asyncio.sleep(self.store.lease / 3)


def _cancelling() -> bool:
    """The current task is being cancelled (the client is closing): a store's client library
    may have turned the cancellation into an error, which must not keep a loop going."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0
