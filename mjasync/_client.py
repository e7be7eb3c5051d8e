"""The Client: configuration, the lazy session, and one method per endpoint."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, Unpack
from urllib.parse import quote, urlsplit

import aiohttp

from ._actions import Press, change_for, retry_fresh_parent
from ._batch import DEFAULT_MAX_IN_FLIGHT, BatchResult, run_batch
from ._callbacks import Callbacks
from ._classify import endpoint_missing, unsupported
from ._decode import acknowledged, seed, task_list, task_or_none, urls
from ._exceptions import (
    APIError,
    APIStatusError,
    InvalidRequestError,
    NotFoundError,
    TaskNotFoundError,
    UnsupportedEndpointError,
)
from ._images import data_url, save_image
from ._logging import logger, redact_url, register_secret, setup_from_env
from ._models import Button, CustomId, Dimensions, TaskInfo, parse_custom_id
from ._poller import Poller
from ._retry import RequestKind
from ._stats import ClientStats
from ._submit import RECONCILE_STRATEGIES, ReconcileStrategy, Submitter
from ._task import DEFAULT_WAIT_TIMEOUT, BodyOptions, SubmitOptions, Task, check_timeout
from ._transport import AUTH_STYLES, AuthStyle, Config, SessionHolder, Transport

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TIMEOUT",
    "BotType",
    "Client",
    "ImagineOptions",
    "VideoMotion",
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
DIMENSIONS: Final = ("PORTRAIT", "SQUARE", "LANDSCAPE")
VideoMotion = Literal["low", "high"]
MOTIONS: Final = ("low", "high")
VIDEO_BATCH_SIZES: Final = (1, 2, 4)

_ACTION: Final = "/mj/submit/action"
_CHANGE: Final = "/mj/submit/change"
_MODAL: Final = "/mj/submit/modal"
_QUERY: Final = "/mj/task/query"
_SERVED_BY: Final = {
    _QUERY: "the plus server",
    _ACTION: "the extended and plus servers and relays (the reference server takes /mj/submit/change)",
    _CHANGE: "the reference and plus servers, relays, and extended servers before v10",
    _MODAL: "the extended and plus servers and relays",
    "/mj/submit/shorten": "the extended and plus servers and relays",
    "/mj/submit/upload-discord-images": "the extended and plus servers and relays",
    "/mj/task/{id}/image-seed": "the extended and plus servers and relays",
    "/mj/insight-face/swap": "the extended and plus servers and relays",
    "/mj/submit/edits": "the extended server (Midjourney web accounts)",
    "/mj/submit/retexture": "the extended server (Midjourney web accounts)",
    "/mj/submit/video": "the extended server",
    "/mj/task/{id}/cancel": "the plus server, and the extended server for admins",
    "/mj/task/list": "the reference, extended and plus servers (not relays)",
    "/mj/task/queue": "the reference and plus servers, and extended servers before v10",
}
"""Who serves the endpoints that not every server has (protocol.md section 6)."""


class ImagineOptions(BodyOptions, total=False):
    """What `imagine_many` passes to every `imagine` (its own `timeout` bounds each whole job)."""

    bot_type: BotType
    images: Sequence[str | bytes] | None


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
        # From here on the key is a secret string: `***` in any repr, traceback locals included.
        api_key = register_secret(api_key) if api_key else None
        if auth not in AUTH_STYLES:
            raise InvalidRequestError(f"auth must be one of {', '.join(AUTH_STYLES)}; got {auth!r}")
        if reconcile not in RECONCILE_STRATEGIES:
            raise InvalidRequestError(
                f"reconcile must be one of {', '.join(RECONCILE_STRATEGIES)}; got {reconcile!r}"
            )
        for name, value in (
            ("timeout", timeout),
            ("connect_timeout", connect_timeout),
            ("poll_interval", poll_interval),
        ):
            check_timeout(value, name)
        for name, value in (
            ("retry_backoff", retry_backoff),
            ("missing_after", missing_after),
            *((f"reconcile_delays[{i}]", d) for i, d in enumerate(reconcile_delays)),
        ):
            check_timeout(value, name, zero=True)
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
        self._missing: set[str] = set()
        """Endpoints this server showed it lacks, when a fallback exists (action -> change)."""

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
        pollers = self.callbacks._pollers
        # The owner's close ends its copies too: they share the session being closed.
        for poller in list(pollers) if self._owns_sessions else [self._poller]:
            await poller.close()
            if poller in pollers:
                pollers.remove(poller)
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
        body: dict[str, Any] = {"prompt": _prompt(prompt), "botType": _bot_type(bot_type)}
        if images:
            body["base64Array"] = _images(images, "images")
        return await self._submit(
            "/mj/submit/imagine", body, notify_hook=notify_hook, state=state, extra_body=extra_body,
            timeout=timeout,
        )

    def imagine_many(
        self,
        prompts: Iterable[str],
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        **common: Unpack[ImagineOptions],
    ) -> AsyncGenerator[BatchResult, None]:
        """Run many imagine jobs with at most `max_in_flight` submitted but unfinished, yielding a
        BatchResult for each as it ends (not in input order).

        A full queue (23, queue-full 9/4, 429) is waited out and the same prompt submitted again:
        those answers prove nothing was created. Nothing ambiguous is ever resent. `timeout` bounds
        each prompt from its first submit attempt to its result. Close the iterator (`aclosing`,
        or `break` inside `async with aclosing(...)`) to stop: no new submits, waits cancelled.
        """
        items = [_prompt(p, f"prompts[{i}]") for i, p in enumerate(_sequence(prompts, "prompts"))]
        if not isinstance(max_in_flight, int) or isinstance(max_in_flight, bool) or max_in_flight < 1:
            raise InvalidRequestError(f"max_in_flight must be an int >= 1, got {max_in_flight!r}")
        check_timeout(timeout)
        _bot_type(common.get("bot_type", "MID_JOURNEY"))
        images = common.get("images")
        if images:
            common["images"] = _images(images, "images")
        return run_batch(
            items,
            lambda prompt: self.imagine(prompt, **common),
            max_in_flight=max_in_flight,
            timeout=timeout,
            backoff=self._options["retry_backoff"],
            stats=self.stats,
        )

    async def action(
        self,
        parent: Task | TaskInfo | str | int,
        custom_id: str | Button | CustomId,
        **options: Unpack[SubmitOptions],
    ) -> Task:
        """Press any button of a finished task by its customId (taken from `info.buttons`).

        On a server without `/submit/action` (the reference server) U1-U4, V1-V4 and reroll go
        through `/submit/change`; other buttons raise UnsupportedEndpointError.
        """
        if isinstance(custom_id, Button):
            custom_id = custom_id.custom_id
        raw = str(custom_id) if isinstance(custom_id, CustomId) else custom_id
        if not isinstance(raw, str) or not raw.strip():
            raise InvalidRequestError(f"custom_id must be a non-empty string, got {raw!r}")
        parsed = parse_custom_id(raw)
        return await self._press(_id_of(parent), Press(raw, change_for(parsed), parsed), options)

    async def _press(self, parent_id: str, press: Press, options: SubmitOptions) -> Task:
        """Send one follow-up: `/submit/action`, or `/submit/change` where the server lacks it."""

        async def send() -> Task:
            if press.custom_id is not None and (press.change is None or _ACTION not in self._missing):
                try:
                    with _optional(_ACTION):
                        body = {"taskId": parent_id, "customId": press.custom_id}
                        return await self._submit(_ACTION, body, **options)
                except UnsupportedEndpointError:
                    if press.change is None:
                        raise
                    self._missing.add(_ACTION)
            assert press.change is not None, "a Press carries a customId, a change, or both"
            action, index = press.change
            with _optional(_CHANGE):
                change: dict[str, Any] = {"taskId": parent_id, "action": action, "index": index}
                return await self._submit(_CHANGE, change, **options)

        task = await retry_fresh_parent(send, backoff=self._options["retry_backoff"], stats=self.stats)
        task._pressed = press.pressed
        return task

    async def modal(
        self,
        task: Task | TaskInfo | str | int,
        *,
        prompt: str | None = None,
        mask_base64: str | bytes | None = None,
        **options: Unpack[SubmitOptions],
    ) -> Task:
        """Complete a task waiting in MODAL (see ActionRequiredError.modal_kind); the job goes on
        under the same id. `mask_base64`: Vary Region's mask, white where to redraw, black elsewhere."""
        task_id = _id_of(task)
        body: dict[str, Any] = {"taskId": task_id}
        if prompt is not None:
            if not isinstance(prompt, str):
                raise InvalidRequestError(f"prompt must be a string, got {type(prompt).__name__}")
            body["prompt"] = prompt
        if mask_base64 is not None:
            body["maskBase64"] = data_url(mask_base64, "mask_base64")

        async def send() -> Task:
            with _optional(_MODAL):
                return await self._submit(_MODAL, body, **options)

        handle = await retry_fresh_parent(send, backoff=self._options["retry_backoff"], stats=self.stats)
        handle._pressed = task._pressed if isinstance(task, Task) else None
        handle._modal_sent = True
        return handle

    async def blend(
        self,
        images: Sequence[str | bytes],
        *,
        dimensions: Dimensions = "SQUARE",
        bot_type: BotType = "MID_JOURNEY",
        **options: Unpack[SubmitOptions],
    ) -> Task:
        """Blend 2-5 images into one picture, shaped PORTRAIT (2:3), SQUARE (1:1) or LANDSCAPE (3:2)."""
        encoded = _images(images, "images")
        if not 2 <= len(encoded) <= 5:
            raise InvalidRequestError(f"blend takes 2 to 5 images, got {len(encoded)}")
        if dimensions not in DIMENSIONS:
            choices = ", ".join(DIMENSIONS)
            raise InvalidRequestError(f"dimensions must be one of {choices}, got {dimensions!r}")
        body = {"botType": _bot_type(bot_type), "base64Array": encoded, "dimensions": dimensions}
        return await self._submit("/mj/submit/blend", body, **options)

    async def describe(
        self, image: str | bytes, *, bot_type: BotType = "MID_JOURNEY", **options: Unpack[SubmitOptions]
    ) -> Task:
        """Ask for four prompts that describe an image; they arrive in the result's `final_prompt`."""
        body = {"botType": _bot_type(bot_type), "base64": data_url(image, "image")}
        return await self._submit("/mj/submit/describe", body, **options)

    async def shorten(
        self, prompt: str, *, bot_type: BotType = "MID_JOURNEY", **options: Unpack[SubmitOptions]
    ) -> Task:
        """Analyse a prompt into shorter ones; the analysis arrives in the result's `final_prompt`."""
        body = {"botType": _bot_type(bot_type), "prompt": _prompt(prompt)}
        with _optional("/mj/submit/shorten"):
            return await self._submit("/mj/submit/shorten", body, **options)

    async def swap_face(
        self, source: str | bytes, target: str | bytes, **options: Unpack[SubmitOptions]
    ) -> Task:
        """Put the face of `source` onto `target` (InsightFace); each an image or an http(s) URL."""
        body = {**_image_or_url(source, "source"), **_image_or_url(target, "target")}
        with _optional("/mj/insight-face/swap"):
            return await self._submit("/mj/insight-face/swap", body, **options)

    async def edit(self, prompt: str, image: str | bytes, **options: Unpack[SubmitOptions]) -> Task:
        """Edit an image as the prompt says (extended server, web accounts); `image` is an image or a URL."""
        return await self._image_job("/mj/submit/edits", prompt, image, options)

    async def retexture(self, prompt: str, image: str | bytes, **options: Unpack[SubmitOptions]) -> Task:
        """Keep an image's shapes and redo its surfaces as the prompt says (extended server, web accounts)."""
        return await self._image_job("/mj/submit/retexture", prompt, image, options)

    async def _image_job(self, path: str, prompt: str, image: str | bytes, options: SubmitOptions) -> Task:
        body = {"prompt": _prompt(prompt), "image": _url_or_data_url(image, "image")}
        with _optional(path):
            return await self._submit(path, body, **options)

    async def video(
        self,
        prompt: str,
        image: str | bytes,
        *,
        end_image: str | bytes | None = None,
        motion: VideoMotion = "low",
        loop: bool = False,
        batch_size: int | None = None,
        video_type: str | None = None,
        **options: Unpack[SubmitOptions],
    ) -> Task:
        """Animate an image into a short video (extended server); the result's `video_url` has it.

        `batch_size` 1, 2 or 4 videos; `video_type` such as `vid_1.1_i2v_720` picks the quality.
        """
        body = _video_body(prompt, motion)
        body["image"] = _url_or_data_url(image, "image")
        if end_image is not None:
            body["endImage"] = _url_or_data_url(end_image, "end_image")
        if not isinstance(loop, bool):
            raise InvalidRequestError(f"loop must be True or False, got {loop!r}")
        if loop:
            body["loop"] = True
        if batch_size is not None:
            if batch_size not in VIDEO_BATCH_SIZES or isinstance(batch_size, bool):
                raise InvalidRequestError(f"batch_size must be 1, 2 or 4, got {batch_size!r}")
            body["batchSize"] = batch_size
        if video_type is not None:
            body["videoType"] = _prompt(video_type, "video_type")
        with _optional("/mj/submit/video"):
            return await self._submit("/mj/submit/video", body, **options)

    async def extend_video(
        self,
        task: Task | TaskInfo | str | int,
        index: int,
        prompt: str,
        *,
        motion: VideoMotion = "low",
        **options: Unpack[SubmitOptions],
    ) -> Task:
        """Make one video (`index` 0-3) of a finished video job longer (extended server)."""
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= 3:
            raise InvalidRequestError(f"index must be 0, 1, 2 or 3 (a video of the job), got {index!r}")
        task_id = _id_of(task)
        body = _video_body(prompt, motion)
        # Relay docs spell the parent `task_id` (protocol.md section 6, uncertain): send both.
        body.update(action="extend", taskId=task_id, task_id=task_id, index=index)
        with _optional("/mj/submit/video"):
            return await self._submit("/mj/submit/video", body, **options)

    async def upload_images(
        self, images: Sequence[str | bytes], *, timeout: float | None = None
    ) -> list[str]:
        """Upload images to Discord and return their URLs (usable in prompts); creates no task.

        Resent only when the request provably did not arrive; an ambiguous failure is raised
        as is (there is no task to look up).
        """
        body = {"base64Array": _images(images, "images")}
        if not body["base64Array"]:
            raise InvalidRequestError("upload_images needs at least one image")
        check_timeout(timeout)
        path = "/mj/submit/upload-discord-images"
        with _optional(path):
            return await self._transport.request(
                "POST", path, urls, body=body, kind=RequestKind.SUBMIT, timeout=timeout
            )

    async def _submit(
        self,
        path: str,
        body: dict[str, Any],
        *,
        notify_hook: str | None = None,
        state: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
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
            body.update(_json_ready(extra_body))
        result = await self._submitter.submit(path, body, state=state, timeout=timeout)
        assert isinstance(result.result, str)
        logger.info("POST %s accepted: task %s (code %d)", path, result.result, result.code)
        return Task(self, result.result, submit_result=result)

    # --- reads --------------------------------------------------------------------------------

    def task(self, task_id: str | int | TaskInfo) -> Task:
        """A handle on an existing task, for example one whose id was stored before a restart.

        Given a TaskInfo, the handle starts from that snapshot (so its buttons need no fetch).
        """
        if isinstance(task_id, TaskInfo):
            return Task(self, task_id.id, last=task_id)
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
        ids = list(dict.fromkeys(_task_id(t) for t in _sequence(task_ids, "task_ids")))
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

    async def image_seed(self, task: Task | TaskInfo | str | int, *, timeout: float | None = None) -> str:
        """The seed of a finished job's image (GET /mj/task/{id}/image-seed)."""
        check_timeout(timeout)
        path = f"/mj/task/{quote(_id_of(task), safe='')}/image-seed"
        with _optional("/mj/task/{id}/image-seed"):
            return await self._transport.request("GET", path, seed, timeout=timeout)

    async def cancel(self, task: Task | TaskInfo | str | int, *, timeout: float | None = None) -> None:
        """Ask the server to cancel a job. The only call that does: timeouts and cancelled waits
        never cancel a paid job. The extended server then reports FAILURE `取消任务`."""
        check_timeout(timeout)
        path = f"/mj/task/{quote(_id_of(task), safe='')}/cancel"
        with _optional("/mj/task/{id}/cancel"):
            await self._transport.request("POST", path, acknowledged, timeout=timeout)

    async def list_tasks(self, *, timeout: float | None = None) -> list[TaskInfo]:
        """The server's task list, newest first (the extended server: its newest 100, all users)."""
        return await self._list("/mj/task/list", timeout)

    async def list_queue(self, *, timeout: float | None = None) -> list[TaskInfo]:
        """The tasks the server has not finished (GET /mj/task/queue)."""
        return await self._list("/mj/task/queue", timeout)

    async def query_tasks(
        self,
        *,
        state: str | None = None,
        ids: Iterable[str | int] | None = None,
        status: str | None = None,
        action: str | None = None,
        prompt: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> list[TaskInfo]:
        """Search tasks with the plus server's `POST /mj/task/query` (the only server that finds
        a task by `state`); paging fields go in `extra_body`. Unknown elsewhere."""
        check_timeout(timeout)
        body: dict[str, Any] = {"state": state, "status": status, "action": action, "prompt": prompt}
        if ids is not None:
            body["ids"] = [_task_id(i) for i in _sequence(ids, "ids")]
        body = {key: value for key, value in body.items() if value is not None}
        if extra_body:
            body.update(_json_ready(extra_body))
        with _optional(_QUERY):
            return await self._transport.request("POST", _QUERY, task_list, body=body, timeout=timeout)

    async def _list(self, path: str, timeout: float | None) -> list[TaskInfo]:
        check_timeout(timeout)
        with _optional(path):
            return await self._transport.request("GET", path, task_list, timeout=timeout)

    async def read_image(self, source: TaskInfo | Task | str, *, timeout: float | None = None) -> bytes:
        """The bytes of a task's result image (or of any image URL), with READ retries."""
        check_timeout(timeout)
        url, _ = await self._image_of(source, timeout)
        return await self._transport.get_bytes(url, timeout=timeout)

    async def download(
        self,
        source: TaskInfo | Task | str,
        path: str | os.PathLike[str] = ".",
        *,
        timeout: float | None = None,
    ) -> Path:
        """Save a result image to `path` and return the file written.

        `path` is a file, or a directory (existing, or given with a trailing `/`) that gets
        `<task id>.png` (the suffix follows the bytes). Result URLs expire about a day after the
        job: save what you keep. A Task is fetched first unless it already saw SUCCESS.
        """
        check_timeout(timeout)
        url, stem = await self._image_of(source, timeout)
        return await save_image(self._transport, url, path, stem, timeout=timeout)

    async def _image_of(self, source: TaskInfo | Task | str, timeout: float | None) -> tuple[str, str]:
        """(image URL, file stem) of a URL, a snapshot, or a handle (fetched unless it saw SUCCESS)."""
        if isinstance(source, str):
            if not _is_http_url(source):
                raise InvalidRequestError("an image URL must start with http:// or https://")
            return source, ""
        info = source
        if isinstance(info, Task):
            last = info.last
            info = last if last is not None and last.succeeded else await info.fetch(timeout=timeout)
        if not info.succeeded or not info.image_url:
            # While it runs, image_url is a low-resolution preview: not what anyone means to save.
            status = info.status.value or "unknown"
            raise InvalidRequestError(f"task {info.id} has no result image (status {status})")
        return info.image_url, info.id


@contextlib.contextmanager
def _optional(path: str) -> Iterator[None]:
    """Turn the 404/405 of an endpoint the server lacks into UnsupportedEndpointError."""
    try:
        yield
    except APIStatusError as exc:
        if isinstance(exc, UnsupportedEndpointError) or not endpoint_missing(exc):
            raise
        raise unsupported(exc, _SERVED_BY.get(path)) from exc


def _json_ready(extra_body: Mapping[str, Any]) -> Mapping[str, Any]:
    """`extra_body` itself, once it is known to encode as JSON (else InvalidRequestError, before
    any request, rather than a TypeError from inside the transport)."""
    try:
        json.dumps(extra_body)
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"extra_body must be JSON-serialisable: {exc}") from None
    return extra_body


def _task_id(task_id: str | int) -> str:
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)
    if not isinstance(task_id, str) or not task_id.strip():
        raise InvalidRequestError(f"a task id must be a non-empty string, got {task_id!r}")
    return task_id


def _id_of(task: Task | TaskInfo | str | int) -> str:
    return task.id if isinstance(task, Task | TaskInfo) else _task_id(task)


def _prompt(prompt: str, name: str = "prompt") -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequestError(f"{name} must be a non-empty string")
    return prompt


def _bot_type(bot_type: str) -> str:
    if bot_type not in BOT_TYPES:
        raise InvalidRequestError(f"bot_type must be one of {', '.join(BOT_TYPES)}; got {bot_type!r}")
    return bot_type


def _sequence(items: Iterable[Any], name: str) -> list[Any]:
    if isinstance(items, str | bytes):
        raise InvalidRequestError(f"{name} must be a list, not a single string")
    try:
        return list(items)
    except TypeError:
        raise InvalidRequestError(f"{name} must be a list, got {type(items).__name__}") from None


def _is_http_url(image: str | bytes) -> bool:
    return isinstance(image, str) and image.startswith(("http://", "https://"))


def _url_or_data_url(image: str | bytes, name: str) -> str:
    """An http(s) URL as it is, any other image as a validated data URL."""
    return image if isinstance(image, str) and _is_http_url(image) else data_url(image, name)


def _image_or_url(image: str | bytes, side: str) -> dict[str, str]:
    """`{side}Url` for an http(s) URL, else `{side}Base64` with a validated data URL."""
    return {f"{side}Url" if _is_http_url(image) else f"{side}Base64": _url_or_data_url(image, side)}


def _video_body(prompt: str, motion: str) -> dict[str, Any]:
    if motion not in MOTIONS:
        raise InvalidRequestError(f"motion must be 'low' or 'high', got {motion!r}")
    return {"prompt": _prompt(prompt), "motion": motion}


def _images(images: Sequence[str | bytes], name: str) -> list[str]:
    return [data_url(image, f"{name}[{i}]") for i, image in enumerate(_sequence(images, name))]
