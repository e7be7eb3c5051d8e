"""The Client: configuration, the lazy session, and one method per endpoint."""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal
from urllib.parse import quote, urlsplit

import aiohttp

from ._callbacks import Callbacks
from ._decode import task_list, task_or_none
from ._exceptions import APIError, InvalidRequestError, NotFoundError, TaskNotFoundError
from ._logging import logger, redact_url, register_secret, setup_from_env
from ._models import ClientStats, TaskInfo
from ._poller import Poller
from ._submit import RECONCILE_STRATEGIES, ReconcileStrategy, Submitter
from ._task import Task, check_timeout
from ._transport import AUTH_STYLES, AuthStyle, Config, SessionHolder, Transport

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TIMEOUT",
    "BotType",
    "Client",
]

DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_MAX_RETRIES: Final = 2
DEFAULT_POLL_INTERVAL: Final = 2.0
MAX_STATE_LENGTH: Final = 255 - 37
"""Characters of a caller's `state`: the server keeps 255, the SDK's tag takes 37."""
MAX_NOTIFY_HOOK_LENGTH: Final = 2000

BotType = Literal["MID_JOURNEY", "NIJI_JOURNEY"]
BOT_TYPES: Final = ("MID_JOURNEY", "NIJI_JOURNEY")

_DATA_URL: Final = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)\Z", re.S)
_MAGIC: Final = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
)


class Client:
    """An async client for one Midjourney proxy (`/mj/...` API).

    Construction does no I/O and needs no running loop; the aiohttp session is created on first
    use. Close it with `async with Client(...)` or `await client.close()`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        auth: AuthStyle = "bearer",
        mode: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_backoff: float = 0.5,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        poll_batch_size: int = 100,
        missing_after: float = 60.0,
        reconcile: ReconcileStrategy = "auto",
        reconcile_delays: Sequence[float] = (2.0, 5.0),
        verify_tls: bool = True,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        setup_from_env()
        base_url = base_url or os.environ.get("MJASYNC_BASE_URL")
        if not base_url:
            raise InvalidRequestError("base_url is required: pass base_url= or set MJASYNC_BASE_URL")
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).hostname:
            raise InvalidRequestError(f"base_url must be an http(s) URL, got {redact_url(base_url)!r}")
        api_key = api_key if api_key is not None else os.environ.get("MJASYNC_API_KEY")
        if auth not in AUTH_STYLES:
            raise InvalidRequestError(f"auth must be one of {', '.join(AUTH_STYLES)}; got {auth!r}")
        if reconcile not in RECONCILE_STRATEGIES:
            raise InvalidRequestError(
                f"reconcile must be one of {', '.join(RECONCILE_STRATEGIES)}; got {reconcile!r}"
            )
        for name, value in (
            ("timeout", timeout),
            ("connect_timeout", connect_timeout),
            ("retry_backoff", retry_backoff),
            ("poll_interval", poll_interval),
            ("missing_after", missing_after),
            *((f"reconcile_delays[{i}]", d) for i, d in enumerate(reconcile_delays)),
        ):
            check_timeout(value, name)
        if not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidRequestError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if not isinstance(poll_batch_size, int) or not 1 <= poll_batch_size <= 1000:
            raise InvalidRequestError(f"poll_batch_size must be 1..1000, got {poll_batch_size!r}")
        self._options: dict[str, Any] = {
            "base_url": base_url,
            "api_key": api_key,
            "auth": auth,
            "mode": mode,
            "timeout": timeout,
            "connect_timeout": connect_timeout,
            "max_retries": max_retries,
            "retry_backoff": retry_backoff,
            "poll_interval": poll_interval,
            "poll_batch_size": poll_batch_size,
            "missing_after": missing_after,
            "reconcile": reconcile,
            "reconcile_delays": tuple(reconcile_delays),
            "verify_tls": verify_tls,
        }
        self._api_key_secret = register_secret(api_key) if api_key else None
        self._build(SessionHolder(session, verify_tls=verify_tls), Callbacks([]), owns_sessions=True)

    def _build(self, sessions: SessionHolder, callbacks: Callbacks, *, owns_sessions: bool) -> None:
        o = self._options
        self._sessions = sessions
        self._owns_sessions = owns_sessions
        self._transport = Transport(
            Config(
                base_url=o["base_url"],
                api_key=o["api_key"],
                auth=o["auth"],
                mode=o["mode"],
                timeout=o["timeout"],
                connect_timeout=o["connect_timeout"],
                max_retries=o["max_retries"],
                retry_backoff=o["retry_backoff"],
            ),
            sessions,
        )
        self._submitter = Submitter(
            self._transport, strategy=o["reconcile"], delays=o["reconcile_delays"]
        )
        self._poller_instance = Poller(
            self._list_by_ids,
            self._fetch_or_none,
            interval=o["poll_interval"],
            batch_size=o["poll_batch_size"],
            missing_after=o["missing_after"],
            stats=self._transport.stats,
        )
        self.callbacks = callbacks
        """notifyHook intake (configure, serve, aiohttp_handler, deliver); shared with copies."""
        callbacks._pollers.append(self._poller_instance)

    @property
    def _poller(self) -> Poller:
        return self._poller_instance

    @property
    def stats(self) -> ClientStats:
        """Requests, retries and reconciles this client (not its copies) has made so far."""
        return self._transport.stats

    @property
    def base_url(self) -> str:
        return str(self._options["base_url"])

    def __repr__(self) -> str:
        return f"<mjasync.Client base_url={redact_url(self.base_url)!r} auth={self._options['auth']!r}>"

    def with_options(self, **overrides: Any) -> Client:
        """A copy with some constructor options changed, sharing this client's session."""
        if "session" in overrides:
            raise InvalidRequestError("with_options() shares the session; build a new Client for another")
        clone = Client(**{**self._options, **overrides})
        clone._build(self._sessions, self.callbacks, owns_sessions=False)
        return clone

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop polling, stop a callback receiver started by `callbacks.serve()`, and close the
        session (unless it was passed in, or belongs to the client this one was copied from).
        Jobs are not cancelled on the server."""
        await self._poller.close()
        if self._poller in self.callbacks._pollers:
            self.callbacks._pollers.remove(self._poller)
        if self._owns_sessions:
            await self.callbacks.close()
            await self._sessions.close()

    # --- submits ----------------------------------------------------------------------------

    async def imagine(
        self,
        prompt: str,
        *,
        bot_type: BotType = "MID_JOURNEY",
        images: Sequence[str | bytes] | None = None,
        notify_hook: str | None = None,
        state: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Task:
        """Submit an /imagine job; returns its Task once the server accepted it.

        `images` are base64 strings, data URLs or raw bytes, sent as `base64Array`. Resent only
        when the request provably created nothing; otherwise found again by its state tag.
        """
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequestError("prompt must be a non-empty string")
        if bot_type not in BOT_TYPES:
            raise InvalidRequestError(f"bot_type must be one of {', '.join(BOT_TYPES)}; got {bot_type!r}")
        body: dict[str, Any] = {"prompt": prompt, "botType": bot_type}
        if images:
            if isinstance(images, str | bytes):
                raise InvalidRequestError("images must be a list of images, not a single one")
            body["base64Array"] = [_data_url(image, f"images[{i}]") for i, image in enumerate(images)]
        return await self._submit("/mj/submit/imagine", body, notify_hook, state, extra_body, timeout)

    async def _submit(
        self,
        path: str,
        body: dict[str, Any],
        notify_hook: str | None,
        state: str | None,
        extra_body: Mapping[str, Any] | None,
        timeout: float | None,
    ) -> Task:
        check_timeout(timeout)
        if state is not None and (not isinstance(state, str) or len(state) > MAX_STATE_LENGTH):
            raise InvalidRequestError(f"state must be a string of at most {MAX_STATE_LENGTH} characters")
        notify_hook = notify_hook or self.callbacks.hook_url
        if notify_hook is not None:
            scheme = urlsplit(notify_hook).scheme
            if scheme not in ("http", "https") or len(notify_hook) > MAX_NOTIFY_HOOK_LENGTH:
                raise InvalidRequestError("notify_hook must be an http(s) URL of at most 2000 characters")
            body["notifyHook"] = notify_hook
        if extra_body:
            if "state" in extra_body:
                raise InvalidRequestError("pass state= rather than extra_body['state']: the SDK tags it")
            body.update(extra_body)
        result = await self._submitter.submit(path, body, state=state, timeout=timeout)
        assert isinstance(result.result, str)
        logger.info("POST %s accepted: task %s (code %d)", path, result.result, result.code)
        return Task(self, result.result, submit_result=result)

    # --- reads --------------------------------------------------------------------------------

    def task(self, task_id: str | int) -> Task:
        """A handle on an existing task, for example one whose id was stored before a restart."""
        return Task(self, _task_id(task_id))

    async def fetch(self, task_id: str | int, *, timeout: float | None = None) -> TaskInfo:
        """One status lookup; TaskNotFoundError when the server does not know the id."""
        task_id = _task_id(task_id)
        check_timeout(timeout)
        info = await self._transport.request(
            "GET", f"/mj/task/{quote(task_id, safe='')}/fetch", task_or_none, timeout=timeout
        )
        if info is None:
            raise TaskNotFoundError(
                f"GET /mj/task/{{id}}/fetch: the server does not know task {task_id}",
                code=None, method="GET", path="/mj/task/{id}/fetch",
            )
        self._poller.publish(info)
        return info

    async def fetch_many(
        self, task_ids: Iterable[str | int], *, timeout: float | None = None
    ) -> list[TaskInfo]:
        """Snapshots of many tasks in few requests (list-by-condition, chunked); unknown ids are
        left out, the rest keep the order asked."""
        check_timeout(timeout)
        ids = list(dict.fromkeys(_task_id(t) for t in task_ids))
        size = self._poller.batch_size
        found: dict[str, TaskInfo] = {}
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            if self._poller.batched:
                try:
                    infos = await self._list_by_ids(chunk, timeout=timeout, retries=None)
                    found.update((info.id, info) for info in infos)
                    continue
                except APIError as exc:
                    if not isinstance(exc, NotFoundError) and exc.status_code != 405:
                        raise
                    self._poller.batched = False
            for task_id in chunk:
                info = await self._fetch_or_none(task_id, timeout=timeout, retries=None)
                if info is not None:
                    found[task_id] = info
        return [found[i] for i in ids if i in found]

    async def _list_by_ids(
        self, ids: Sequence[str], *, timeout: float | None = None, retries: int | None = 0
    ) -> list[TaskInfo]:
        """One list-by-condition call; by default without retries (the poller's next tick is one)."""
        wanted = set(ids)
        tasks = await self._transport.request(
            "POST", "/mj/task/list-by-condition", task_list,
            body={"ids": list(ids)}, timeout=timeout, retries=retries,
        )
        return [info for info in tasks if info.id in wanted]

    async def _fetch_or_none(
        self, task_id: str, *, timeout: float | None = None, retries: int | None = 0
    ) -> TaskInfo | None:
        try:
            return await self._transport.request(
                "GET", f"/mj/task/{quote(task_id, safe='')}/fetch", task_or_none,
                timeout=timeout, retries=retries,
            )
        except TaskNotFoundError:
            return None

    async def read_image(self, info: TaskInfo | str, *, timeout: float | None = None) -> bytes:
        """The bytes of a task's result image (or of any image URL), with READ retries."""
        url = info if isinstance(info, str) else info.image_url
        if not url:
            raise InvalidRequestError("this task has no image_url yet")
        check_timeout(timeout)
        return await self._transport.get_bytes(url, timeout=timeout)


def _task_id(task_id: str | int) -> str:
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)
    if not isinstance(task_id, str) or not task_id.strip():
        raise InvalidRequestError(f"a task id must be a non-empty string, got {task_id!r}")
    return task_id


def _data_url(image: str | bytes, name: str) -> str:
    """A data URL for an image given as raw bytes, base64 text or a data URL; validated."""
    if isinstance(image, bytes):
        raw, payload = image, base64.b64encode(image).decode()
    elif isinstance(image, str):
        match = _DATA_URL.match(image)
        payload = match.group(2) if match else image
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequestError(f"{name} is neither base64 nor a base64 data URL") from exc
        if match and raw:
            return image
    else:
        raise InvalidRequestError(f"{name} must be bytes, base64 text or a data URL")
    if not raw:
        raise InvalidRequestError(f"{name} is empty")
    mime = next((m for magic, m in _MAGIC if raw.startswith(magic)), "image/png")
    return f"data:{mime};base64,{payload}"
