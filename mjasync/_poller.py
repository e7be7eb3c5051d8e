"""One batched poller per client: every waited task id, in chunks, on one timer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from ._classify import endpoint_missing
from ._exceptions import (
    AuthenticationError,
    ClientClosedError,
    MjError,
    NotFoundError,
    TaskNotFoundError,
)
from ._logging import logger
from ._models import TaskInfo, TaskStatus, is_older, snapshot_key
from ._stats import ClientStats

__all__ = ["Poller", "TaskReader"]

SINGLE_FETCH_CONCURRENCY: Final = 8
CALLBACK_QUIET_TICKS: Final = 4
"""An id that had a callback in the last few intervals is polled only every this many ticks."""
REFUSED_POLLS: Final = 3
"""Polls in a row refused with 401/403 or an enveloped 404 before a wait fails with that error:
one refused answer (a WAF page, a gateway blip) is no proof that every later one will be."""


class TaskReader(Protocol):
    """How the poller reads tasks (a `Reader` over the client's transport); calls may fail, the
    next tick is the retry."""

    @property
    def batch_size(self) -> int:
        """Ids per list_by_ids call."""

    @property
    def batched(self) -> bool:
        """False once list_by_ids showed the server lacks it (the reader finds out)."""

    async def list_by_ids(self, ids: Sequence[str]) -> list[TaskInfo]: ...

    async def fetch_or_none(self, task_id: str) -> TaskInfo | None: ...


class Entry:
    """The shared state of one waited task id; every waiter on that id reads the same entry."""

    __slots__ = (
        "_waiters", "confirmed_at", "error", "hinted_at", "id", "last", "missing_since", "refs",
        "refusals",
    )

    def __init__(self, task_id: str, last: TaskInfo | None) -> None:
        self.id = task_id
        self.last = last
        self.error: MjError | None = None
        self.refs = 0
        self.missing_since: float | None = None
        self.hinted_at: float | None = None
        self.confirmed_at: float | None = None
        self.refusals = 0
        """Polls refused in a row (see REFUSED_POLLS); any answer about the task resets it."""
        # One future per sleeping waiter, made on demand: far lighter than an asyncio.Event each.
        self._waiters: list[asyncio.Future[None]] = []

    def update(self, info: TaskInfo) -> bool:
        """Take a newer snapshot and wake the waiters; False when it repeats or is behind the
        last one, or the task already ended."""
        last = self.last
        self.missing_since = None
        if last is not None and (
            last.is_terminal or snapshot_key(last) == snapshot_key(info) or is_older(info, last)
        ):
            return False
        self.last = info
        self._signal()
        return True

    def fail(self, error: MjError) -> None:
        self.error = error
        self._signal()

    def _signal(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def changed(self) -> None:
        """Return at the next update or failure."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:  # cancelled before the signal
                self._waiters.remove(waiter)


class Poller:
    """Polls every waited id each `interval` seconds through list-by-condition (or per-id fetches
    when the server lacks it); runs only while something waits, and never overlaps its ticks.

    Callbacks come in through `hint`: a progress one wakes waiters at once; a terminal or MODAL
    one counts only once a fetch confirms it.
    """

    def __init__(
        self,
        reader: TaskReader,
        *,
        interval: float,
        missing_after: float,
        stats: ClientStats,
        on_end: Callable[[TaskInfo], None] = lambda info: None,
        on_start: Callable[[], None] = lambda: None,
    ) -> None:
        self.reader = reader
        self.on_start = on_start
        """Told each time polling starts (the client's store starts its lease and bus then)."""
        self.on_end = on_end
        """Told once per waited task, with the snapshot that ended it (the store keeps it)."""
        self.interval = interval
        self.missing_after = missing_after
        self.stats = stats
        self.ticks = 0
        self._entries: dict[str, Entry] = {}
        self._task: asyncio.Task[None] | None = None
        self._sleeping = False
        self._confirming: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        """Poller loops not finished yet (a stopped one may still be unwinding)."""
        self._closed = False

    def __len__(self) -> int:
        return len(self._entries)

    def watch(self, task_id: str, last: TaskInfo | None = None) -> Entry:
        """Start (or join) polling `task_id`; pair every call with `unwatch`."""
        if self._closed:
            raise ClientClosedError("this Client is closed; create a new one")
        entry = self._entries.get(task_id)
        if entry is None:
            entry = self._entries[task_id] = Entry(task_id, last)
        entry.refs += 1
        if self._task is None:
            self.on_start()
            task = asyncio.get_running_loop().create_task(self._run(), name="mjasync-poller")
            self._task = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return entry

    def unwatch(self, entry: Entry) -> None:
        entry.refs -= 1
        if entry.refs <= 0 and self._entries.get(entry.id) is entry:
            del self._entries[entry.id]
            if not self._entries and self._sleeping and self._task is not None:
                # Forget it at once: a watch() before it has unwound must start a fresh poller.
                self._task.cancel()
                self._task = None

    def publish(self, info: TaskInfo) -> bool:
        """Hand a confirmed snapshot (from a fetch) to the waiters of its id."""
        entry = self._entries.get(info.id)
        return entry is not None and self._apply(entry, info, by_callback=False)

    def hint(self, info: TaskInfo) -> bool:
        """Take a callback's snapshot; True when something here waits for that task."""
        entry = self._entries.get(info.id)
        if entry is None or self._closed:
            return False
        self.stats.callbacks += 1
        now = asyncio.get_running_loop().time()
        if _ends_a_wait(info):
            # Unconfirmed, it proves nothing: it must not thin out the polling either.
            self._schedule_confirm(entry, now)
        else:
            entry.hinted_at = now
            self._apply(entry, info, by_callback=True)
        return True

    def _schedule_confirm(self, entry: Entry, now: float) -> None:
        """One confirming fetch at a time per task, and at most one per interval: one asked for
        sooner waits for the end of that window (a flood of forged terminal callbacks costs the
        server no more than polling does, and cannot push the real one out)."""
        if entry.id in self._confirming or (entry.last is not None and entry.last.is_terminal):
            return
        delay = 0.0 if entry.confirmed_at is None else max(0.0, entry.confirmed_at + self.interval - now)
        confirm = asyncio.get_running_loop().create_task(self._confirm(entry, delay))
        self._confirming[entry.id] = confirm

    async def close(self) -> None:
        """Stop polling for good; every wait still pending ends with ClientClosedError."""
        self._closed = True
        for entry in self._entries.values():
            entry.fail(ClientClosedError("the Client was closed while this task was being waited for"))
        tasks = [*self._tasks, *self._confirming.values()]
        self._task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _apply(self, entry: Entry, info: TaskInfo, *, by_callback: bool) -> bool:
        changed = entry.update(info)
        if changed and info.is_terminal:
            self.on_end(info)
            if by_callback:
                self.stats.resolved_by_callback += 1
            else:
                self.stats.resolved_by_poll += 1
        return changed

    async def _confirm(self, entry: Entry, delay: float) -> None:
        """One fetch, after `delay` seconds, to check a terminal or MODAL callback; a failure
        leaves it to the next tick."""
        try:
            await asyncio.sleep(delay)
            if self._entries.get(entry.id) is not entry:
                return  # nothing waits for it any more
            info = await self.reader.fetch_or_none(entry.id)
        except MjError as exc:
            logger.info("could not confirm the callback for task %s: %s", entry.id, exc)
            return
        finally:
            self._confirming.pop(entry.id, None)
            entry.confirmed_at = asyncio.get_running_loop().time()
        if info is not None:
            self._apply(entry, info, by_callback=True)

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

    def _due(self, now: float) -> list[str]:
        """The ids to poll this tick: all, except those kept fresh by recent callbacks (polled
        every few ticks only, never dropped: callbacks get lost)."""
        if self.ticks % CALLBACK_QUIET_TICKS == 0:
            return list(self._entries)
        quiet = self.interval * CALLBACK_QUIET_TICKS
        return [
            task_id
            for task_id, entry in self._entries.items()
            if entry.hinted_at is None or now - entry.hinted_at > quiet
        ]

    async def _tick(self) -> None:
        self.ticks += 1
        ids = self._due(asyncio.get_running_loop().time())
        found: dict[str, TaskInfo] = {}
        asked: list[str] = []
        size = self.reader.batch_size
        if self.reader.batched:
            chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
            answers = await asyncio.gather(
                *(self.reader.list_by_ids(chunk) for chunk in chunks), return_exceptions=True
            )
            for chunk, answer in zip(chunks, answers, strict=True):
                if isinstance(answer, BaseException):
                    if not self.reader.batched:
                        logger.info("list-by-condition is missing (%s); polling id by id", answer)
                        break
                    if endpoint_missing(answer):  # the reader counts these; the next tick asks again
                        logger.warning("list-by-condition answered %s; asking again next tick", answer)
                    else:
                        self._tick_failed(chunk, answer)
                    continue
                asked += chunk
                for info in answer:
                    found[info.id] = info
        if not self.reader.batched:
            asked = ids
        # Ids a batch left out are fetched singly before they count as missing.
        singles = [task_id for task_id in asked if task_id not in found]
        unanswered = await self._fetch_singly(singles, found) if singles else set()
        now = asyncio.get_running_loop().time()
        for task_id in asked:
            entry = self._entries.get(task_id)
            if entry is None or task_id in unanswered:
                continue
            entry.refusals = 0
            snapshot = found.get(task_id)
            if snapshot is not None:
                self._apply(entry, snapshot, by_callback=False)
            else:
                self._missing(entry, now)

    async def _fetch_singly(self, ids: list[str], found: dict[str, TaskInfo]) -> set[str]:
        """Fetch `ids` one by one into `found`; returns the ids whose fetch failed."""
        limit = asyncio.Semaphore(SINGLE_FETCH_CONCURRENCY)
        failed: set[str] = set()

        async def one(task_id: str) -> None:
            async with limit:
                try:
                    info: TaskInfo | None = await self.reader.fetch_or_none(task_id)
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
        """A failed poll waits for the next tick. A closed client fails the waits at once; a
        refusal (401/403, a 404 that is not a missing endpoint) once REFUSED_POLLS in a row say so."""
        if not isinstance(exc, AuthenticationError | NotFoundError | ClientClosedError):
            logger.warning("poll of %d task(s) failed: %s", len(ids), exc)
            return
        closed = isinstance(exc, ClientClosedError)
        for task_id in ids:
            entry = self._entries.get(task_id)
            if entry is None:
                continue
            entry.refusals += 1
            if closed or entry.refusals >= REFUSED_POLLS:
                entry.fail(exc)
        if not closed:
            logger.warning("poll of %d task(s) refused (a wait fails after %d in a row): %s",
                           len(ids), REFUSED_POLLS, exc)


def _ends_a_wait(info: TaskInfo) -> bool:
    """A terminal or MODAL snapshot: either ends `wait()`, so a callback's claim is fetched first."""
    return info.is_terminal or info.status is TaskStatus.MODAL
