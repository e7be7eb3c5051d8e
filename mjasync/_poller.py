"""One batched poller per client: every waited task id, in chunks, on one timer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from ._exceptions import APIError, AuthenticationError, MjError, NotFoundError, TaskNotFoundError
from ._logging import logger
from ._models import TaskInfo, snapshot_key

__all__ = ["Entry", "Poller"]

ListByIds = Callable[[Sequence[str]], Awaitable[list[TaskInfo]]]
FetchOne = Callable[[str], Awaitable[TaskInfo | None]]
SINGLE_FETCH_CONCURRENCY: Final = 8
_MISSING_ENDPOINT: Final = (404, 405)


class Entry:
    """The shared state of one waited task id; every waiter on that id reads the same entry."""

    __slots__ = ("_changed", "error", "id", "last", "missing_since", "refs", "version")

    def __init__(self, task_id: str, last: TaskInfo | None) -> None:
        self.id = task_id
        self.last = last
        self.version = 0
        self.error: MjError | None = None
        self.refs = 0
        self.missing_since: float | None = None
        self._changed = asyncio.Event()

    def update(self, info: TaskInfo) -> bool:
        """Take a newer snapshot; False (nothing signalled) when it repeats the last one or the
        task already ended."""
        last = self.last
        if last is not None and (last.is_terminal or snapshot_key(last) == snapshot_key(info)):
            return False
        self.last = info
        self.missing_since = None
        self._signal()
        return True

    def fail(self, error: MjError) -> None:
        self.error = error
        self._signal()

    def _signal(self) -> None:
        self.version += 1
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def changed(self) -> None:
        """Return at the next update or failure."""
        await self._changed.wait()


class Poller:
    """Polls every waited id each `interval` seconds through list-by-condition (or per-id fetches
    when the server lacks it); runs only while something waits, and never overlaps its ticks."""

    def __init__(
        self,
        list_by_ids: ListByIds,
        fetch_one: FetchOne,
        *,
        interval: float,
        batch_size: int,
        missing_after: float,
    ) -> None:
        self._list_by_ids = list_by_ids
        self._fetch_one = fetch_one
        self.interval = interval
        self.batch_size = batch_size
        self.missing_after = missing_after
        self.batched = True
        """False once the server showed it has no list-by-condition endpoint."""
        self.ticks = 0
        self._entries: dict[str, Entry] = {}
        self._task: asyncio.Task[None] | None = None
        self._sleeping = False

    def __len__(self) -> int:
        return len(self._entries)

    def watch(self, task_id: str, last: TaskInfo | None = None) -> Entry:
        """Start (or join) polling `task_id`; pair every call with `unwatch`."""
        entry = self._entries.get(task_id)
        if entry is None:
            entry = self._entries[task_id] = Entry(task_id, last)
        entry.refs += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="mjasync-poller")
        return entry

    def unwatch(self, entry: Entry) -> None:
        entry.refs -= 1
        if entry.refs <= 0 and self._entries.get(entry.id) is entry:
            del self._entries[entry.id]
            if not self._entries and self._sleeping and self._task is not None:
                self._task.cancel()

    def publish(self, info: TaskInfo) -> bool:
        """Hand a snapshot obtained elsewhere (a fetch, a callback) to the waiters of its id."""
        entry = self._entries.get(info.id)
        return entry is not None and entry.update(info)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            while self._entries:
                try:
                    await self._tick()
                except Exception:  # the loop must outlive any one bad tick
                    logger.exception("poll tick failed")
                if not self._entries:
                    break
                self._sleeping = True
                try:
                    await asyncio.sleep(self.interval)
                finally:
                    self._sleeping = False
        except asyncio.CancelledError:
            if self._entries:
                raise
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _tick(self) -> None:
        self.ticks += 1
        ids = list(self._entries)
        found: dict[str, TaskInfo] = {}
        asked: list[str] = []
        if self.batched:
            chunks = [ids[i : i + self.batch_size] for i in range(0, len(ids), self.batch_size)]
            answers = await asyncio.gather(
                *(self._list_by_ids(chunk) for chunk in chunks), return_exceptions=True
            )
            for chunk, answer in zip(chunks, answers, strict=True):
                if isinstance(answer, BaseException):
                    if isinstance(answer, APIError) and _endpoint_missing(answer):
                        logger.info("list-by-condition is missing (%s); polling id by id", answer.status_code)
                        self.batched = False
                        break
                    self._tick_failed(chunk, answer)
                    continue
                asked += chunk
                for info in answer:
                    found[info.id] = info
        if not self.batched:
            asked = ids
        # Ids a batch left out are fetched singly before they count as missing.
        singles = [task_id for task_id in asked if task_id not in found]
        unanswered = await self._fetch_singly(singles, found) if singles else set()
        now = asyncio.get_running_loop().time()
        for task_id in asked:
            entry = self._entries.get(task_id)
            if entry is None or task_id in unanswered:
                continue
            snapshot = found.get(task_id)
            if snapshot is not None:
                entry.update(snapshot)
            else:
                self._missing(entry, now)

    async def _fetch_singly(self, ids: list[str], found: dict[str, TaskInfo]) -> set[str]:
        """Fetch `ids` one by one into `found`; returns the ids whose fetch failed."""
        limit = asyncio.Semaphore(SINGLE_FETCH_CONCURRENCY)
        failed: set[str] = set()

        async def one(task_id: str) -> None:
            async with limit:
                try:
                    info: TaskInfo | None = await self._fetch_one(task_id)
                except MjError as exc:
                    failed.add(task_id)
                    self._tick_failed([task_id], exc)
                    return
            if info is not None:
                found[task_id] = info

        await asyncio.gather(*(one(task_id) for task_id in ids))
        return failed

    def _missing(self, entry: Entry, now: float) -> None:
        if entry.missing_since is None:
            entry.missing_since = now
        elif now - entry.missing_since >= self.missing_after:
            entry.fail(
                TaskNotFoundError(
                    f"task {entry.id} has been unknown to the server for {self.missing_after:g} s",
                    code=None, method="GET", path="/mj/task/{id}/fetch",
                )
            )

    def _tick_failed(self, ids: Sequence[str], exc: BaseException) -> None:
        """A failed poll waits for the next tick, except errors that no tick will cure."""
        if isinstance(exc, AuthenticationError | NotFoundError):
            for task_id in ids:
                entry = self._entries.get(task_id)
                if entry is not None:
                    entry.fail(exc)
            return
        logger.warning("poll of %d task(s) failed: %s", len(ids), exc)


def _endpoint_missing(exc: APIError) -> bool:
    return exc.status_code in _MISSING_ENDPOINT and not isinstance(exc, TaskNotFoundError)
