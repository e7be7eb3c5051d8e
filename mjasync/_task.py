"""The Task handle: a task id plus the ways to follow it (fetch, wait, updates, await)."""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Final, Protocol

from ._exceptions import (
    ActionRequiredError,
    InvalidRequestError,
    TaskCancelledError,
    TaskFailedError,
    WaitTimeoutError,
)
from ._models import SubmitResult, TaskInfo, TaskStatus, snapshot_key

if TYPE_CHECKING:
    from ._poller import Poller

__all__ = ["DEFAULT_WAIT_TIMEOUT", "Task", "check_timeout"]

DEFAULT_WAIT_TIMEOUT: Final = 900.0
"""Seconds `wait()` and `updates()` follow a task by default (15 minutes)."""

ProgressCallback = Callable[[TaskInfo], Awaitable[Any] | Any]


class _Owner(Protocol):
    """What a Task needs from its client (the Client implements it)."""

    @property
    def _poller(self) -> Poller: ...

    async def fetch(self, task_id: str, *, timeout: float | None = None) -> TaskInfo: ...


def check_timeout(timeout: float | None, name: str = "timeout") -> None:
    """Raise InvalidRequestError for a negative, NaN or non-numeric timeout (None means none)."""
    if timeout is None:
        return
    number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
    if not number or math.isnan(timeout) or timeout < 0:
        raise InvalidRequestError(f"{name} must be a number of seconds >= 0 or None, got {timeout!r}")


class Task:
    """A handle on one accepted job. Await it for the final TaskInfo; it holds no connection."""

    __slots__ = ("_client", "_last", "id", "submit_result")

    def __init__(
        self,
        client: _Owner,
        task_id: str,
        *,
        last: TaskInfo | None = None,
        submit_result: SubmitResult | None = None,
    ) -> None:
        self._client = client
        self._last = last
        self.id = task_id
        """The server's task id (a string of digits)."""
        self.submit_result = submit_result
        """The accepted submit envelope (code, queue position); None for a handle rebuilt from an id."""

    @property
    def last(self) -> TaskInfo | None:
        """The latest snapshot this handle has seen, or None before the first one."""
        return self._last

    def __repr__(self) -> str:
        status = self._last.status.value or "UNKNOWN" if self._last is not None else "not fetched"
        return f"<mjasync.Task id={self.id!r} status={status}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and other.id == self.id and other._client is self._client

    def __hash__(self) -> int:
        return hash(self.id)

    async def fetch(self, *, timeout: float | None = None) -> TaskInfo:
        """One status lookup (GET /mj/task/{id}/fetch)."""
        info = await self._client.fetch(self.id, timeout=timeout)
        self._last = info
        return info

    async def wait(
        self,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        *,
        on_progress: ProgressCallback | None = None,
    ) -> TaskInfo:
        """Follow the task to its end: the final TaskInfo on SUCCESS, else a typed error.

        Raises TaskFailedError, TaskCancelledError, ActionRequiredError (MODAL), or
        WaitTimeoutError at the deadline; the job itself is never cancelled by waiting.
        `on_progress` (sync or async) gets every new snapshot.
        """
        check_timeout(timeout)
        async with aclosing(self._follow(timeout)) as snapshots:
            async for info in snapshots:
                if on_progress is not None:
                    result = on_progress(info)
                    if inspect.isawaitable(result):
                        await result
                if info.is_terminal or info.status is TaskStatus.MODAL:
                    return _outcome(info)
        raise AssertionError("unreachable: _follow ends only at a terminal status")  # pragma: no cover

    def __await__(self) -> Generator[Any, None, TaskInfo]:
        return self.wait().__await__()

    async def updates(self, timeout: float | None = DEFAULT_WAIT_TIMEOUT) -> AsyncIterator[TaskInfo]:
        """Yield each new snapshot (de-duplicated) until a terminal one, which is yielded too.

        MODAL is yielded and following goes on (submit the modal inside the loop). Raises
        WaitTimeoutError at the deadline.
        """
        check_timeout(timeout)
        async with aclosing(self._follow(timeout)) as snapshots:
            async for info in snapshots:
                yield info

    async def _follow(self, timeout: float | None) -> AsyncGenerator[TaskInfo, None]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        poller = self._client._poller
        entry = poller.watch(self.id, self._last)
        try:
            seen: tuple[object, ...] | None = None
            while True:
                info = entry.last
                if info is not None and snapshot_key(info) != seen:
                    seen = snapshot_key(info)
                    self._last = info
                    yield info
                    if info.is_terminal:
                        return
                if entry.error is not None:
                    raise entry.error
                try:
                    async with asyncio.timeout_at(deadline):
                        await entry.changed()
                except TimeoutError:
                    raise self._timed_out(timeout) from None
        finally:
            poller.unwatch(entry)

    def _timed_out(self, timeout: float | None) -> WaitTimeoutError:
        last = self._last
        where = "no status yet"
        if last is not None:
            where = f"last {last.status.value or 'UNKNOWN'} {last.progress_text}"
        return WaitTimeoutError(
            f"task {self.id} did not finish within {timeout:g} s ({where.strip()}); it was not "
            f"cancelled and may still finish: follow it again with client.task({self.id!r})",
            task_id=self.id,
            last=last,
        )


def _outcome(info: TaskInfo) -> TaskInfo:
    """Return a SUCCESS snapshot; raise the typed error for FAILURE, CANCEL and MODAL."""
    if info.status is TaskStatus.SUCCESS:
        return info
    if info.status is TaskStatus.FAILURE:
        raise TaskFailedError(f"task {info.id} failed: {info.fail_reason or 'no reason given'}", info)
    if info.status is TaskStatus.CANCEL:
        raise TaskCancelledError(f"task {info.id} was cancelled", info)
    raise ActionRequiredError(
        f"task {info.id} waits in MODAL for client.modal({info.id!r}, ...)", info
    )
