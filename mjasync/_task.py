"""The Task handle: a task id plus the ways to follow it (fetch, wait, updates, await)."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypedDict, Unpack

from . import _validate as check
from ._actions import (
    Press,
    Want,
    modal_kind,
    resolve,
    want_pan,
    want_reroll,
    want_upscale,
    want_upscale_hd,
    want_vary,
    want_vary_region,
    want_zoom,
)
from ._exceptions import (
    ActionRequiredError,
    InvalidRequestError,
    TaskCancelledError,
    TaskFailedError,
    WaitTimeoutError,
)
from ._models import CustomId, PanDirection, SubmitResult, TaskInfo, TaskStatus, snapshot_key

if TYPE_CHECKING:
    from ._poller import Poller

__all__ = [
    "DEFAULT_WAIT_TIMEOUT",
    "BodyOptions",
    "ImagineOptions",
    "SubmitOptions",
    "Task",
    "id_of",
    "image_source",
]

DEFAULT_WAIT_TIMEOUT: Final = 900.0
"""Seconds `wait()` and `updates()` follow a task by default (15 minutes)."""

ProgressCallback = Callable[[TaskInfo], Awaitable[Any] | Any]


class BodyOptions(TypedDict, total=False):
    """The submit fields every job endpoint takes (see `Client.imagine`)."""

    notify_hook: str | None
    state: str | None
    extra_body: Mapping[str, Any] | None
    meta: Mapping[str, Any] | None
    idempotency_key: str | None


class SubmitOptions(BodyOptions, total=False):
    """Keyword arguments every submit method takes: the body fields plus a per-request `timeout`."""

    timeout: float | None


class ImagineOptions(BodyOptions, total=False):
    """What `imagine_many` passes to every `imagine` (its own `timeout` bounds each whole job)."""

    bot_type: check.BotType
    images: Sequence[str | bytes] | None


class _Owner(Protocol):
    """What a Task needs from its client (the Client implements it)."""

    @property
    def _poller(self) -> Poller: ...

    async def fetch(self, task_id: str, *, timeout: float | None = None) -> TaskInfo: ...

    async def _press(self, parent_id: str, press: Press, options: SubmitOptions) -> Task: ...

    async def download(
        self, source: Task, path: str | os.PathLike[str] = ..., *, timeout: float | None = ...
    ) -> Path: ...

    async def forget(self, task_id: str) -> None: ...


class Task:
    """A handle on one accepted job. Await it for the final TaskInfo; it holds no connection."""

    __slots__ = ("__weakref__", "_client", "_last", "_modal_sent", "_pressed", "id", "meta", "submit_result")

    def __init__(
        self,
        client: _Owner,
        task_id: str,
        *,
        last: TaskInfo | None = None,
        submit_result: SubmitResult | None = None,
        pressed: CustomId | None = None,
        modal_sent: bool = False,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self._client = client
        self._last = last
        self._pressed = pressed
        """The button whose press created this task, when this handle made it."""
        self._modal_sent = modal_sent
        """True on the handle `Client.modal()` returns: a MODAL it still sees is the server lagging
        (relays refresh every ~15 s), not a new request for input."""
        self.id = task_id
        """The server's task id (a string of digits)."""
        self.submit_result = submit_result
        """The accepted submit envelope (code, queue position); None for a handle rebuilt from an id."""
        self.meta: Mapping[str, Any] = meta if meta is not None else {}
        """What the submit's `meta=` stored with the job (also on handles from `resume()`)."""

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
        check.timeout(timeout, zero=True)
        async with aclosing(self._follow(timeout)) as snapshots:
            async for info in snapshots:
                if on_progress is not None:
                    result = on_progress(info)
                    if inspect.isawaitable(result):
                        await result
                if info.is_terminal or (info.status is TaskStatus.MODAL and not self._modal_sent):
                    return _outcome(info, self._pressed)
        raise AssertionError("unreachable: _follow ends only at a terminal status")  # pragma: no cover

    def __await__(self) -> Generator[Any, None, TaskInfo]:
        return self.wait().__await__()

    async def updates(self, timeout: float | None = DEFAULT_WAIT_TIMEOUT) -> AsyncIterator[TaskInfo]:
        """Yield each new snapshot (de-duplicated) until a terminal one, which is yielded too.

        MODAL is yielded and following goes on (submit the modal inside the loop). Raises
        WaitTimeoutError at the deadline.
        """
        check.timeout(timeout, zero=True)
        async with aclosing(self._follow(timeout)) as snapshots:
            async for info in snapshots:
                yield info

    async def _follow(self, timeout: float | None) -> AsyncGenerator[TaskInfo, None]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        poller = self._client._poller
        # A MODAL snapshot is stale once the modal was submitted: let the server say what is now.
        last = self._last
        entry = poller.watch(self.id, None if last is not None and last.status is TaskStatus.MODAL else last)
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

    # --- follow-ups: each resolves its customId from this task's own buttons -------------------

    async def upscale(self, index: int, **options: Unpack[SubmitOptions]) -> Task:
        """U1-U4: upscale one image of this grid (`/submit/change` on the reference server)."""
        return await self._follow_up(want_upscale(index), options)

    async def vary(
        self, index: int | None = None, *, strong: bool = False, **options: Unpack[SubmitOptions]
    ) -> Task:
        """V1-V4 of a grid; on an upscaled image, Vary (Subtle) or with `strong=True` Vary (Strong)."""
        return await self._follow_up(want_vary(index, strong), options)

    async def reroll(self, **options: Unpack[SubmitOptions]) -> Task:
        """🔄: run the same prompt again."""
        return await self._follow_up(want_reroll(), options)

    async def zoom(self, factor: float | Literal["custom"], **options: Unpack[SubmitOptions]) -> Task:
        """Zoom Out 2x or 1.5x of an upscaled image. `"custom"` presses Custom Zoom, whose task
        waits in MODAL for `client.modal(id, prompt="... --zoom 1.8")`."""
        return await self._follow_up(want_zoom(factor), options)

    async def pan(self, direction: PanDirection, **options: Unpack[SubmitOptions]) -> Task:
        """Pan an upscaled image left, right, up or down."""
        return await self._follow_up(want_pan(direction), options)

    async def vary_region(self, **options: Unpack[SubmitOptions]) -> Task:
        """Vary (Region): the new task waits in MODAL for `client.modal(id, prompt=..., mask_base64=...)`."""
        return await self._follow_up(want_vary_region(), options)

    async def upscale_hd(
        self, style: check.UpscaleStyle = "subtle", **options: Unpack[SubmitOptions]
    ) -> Task:
        """Upscale (Subtle) or (Creative): the 2x upscale buttons of an upscaled image (v6/v7)."""
        return await self._follow_up(want_upscale_hd(style), options)

    async def _follow_up(self, want: Want, options: SubmitOptions) -> Task:
        """Press the button `want` means; fetches first unless the handle already saw SUCCESS."""
        parent = self._last
        if parent is None or parent.status is not TaskStatus.SUCCESS:
            parent = await self.fetch(timeout=options.get("timeout"))
        return await self._client._press(self.id, resolve(want, parent), options)

    async def download(self, path: str | os.PathLike[str] = ".", *, timeout: float | None = None) -> Path:
        """Save the result image (fetched first unless SUCCESS was seen) to a file or directory."""
        return await self._client.download(self, path, timeout=timeout)

    async def forget(self) -> None:
        """The job is handled: `resume()` never returns it again (see `Client.forget`)."""
        await self._client.forget(self.id)

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


def _outcome(info: TaskInfo, pressed: CustomId | None) -> TaskInfo:
    """Return a SUCCESS snapshot; raise the typed error for FAILURE, CANCEL and MODAL."""
    if info.status is TaskStatus.SUCCESS:
        return info
    if info.status is TaskStatus.FAILURE:
        raise TaskFailedError(f"task {info.id} failed: {info.fail_reason or 'no reason given'}", info)
    if info.status is TaskStatus.CANCEL:
        raise TaskCancelledError(f"task {info.id} was cancelled", info)
    kind = modal_kind(info, pressed)
    needs = {"remix": "an optional prompt", "vary_region": "mask_base64 and a prompt",
             "custom_zoom": "a prompt with --zoom 1-2"}[kind]
    raise ActionRequiredError(
        f"task {info.id} waits in MODAL ({kind}) for client.modal({info.id!r}, ...) with {needs}",
        info, modal_kind=kind,
    )


def id_of(task: Task | TaskInfo | str | int) -> str:
    """The task id of a handle, a snapshot, or an id given as a string or int."""
    return task.id if isinstance(task, Task | TaskInfo) else check.task_id(task)


async def image_source(source: TaskInfo | Task | str, timeout: float | None) -> tuple[str, str]:
    """(image URL, file stem) of a URL, a snapshot, or a handle (fetched unless it saw SUCCESS)."""
    if isinstance(source, str):
        return check.http_url(source), ""
    info = source
    if isinstance(info, Task):
        last = info.last
        info = last if last is not None and last.succeeded else await info.fetch(timeout=timeout)
    if not info.succeeded or not info.image_url:
        # While it runs, image_url is a low-resolution preview: not what anyone means to save.
        status = info.status.value or "unknown"
        raise InvalidRequestError(f"task {info.id} has no result image (status {status})")
    return info.image_url, info.id
