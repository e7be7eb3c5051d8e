"""FakeProxy: the /mj API of the three server families on a real loopback aiohttp server."""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import itertools
import json
import random
import re
import secrets
import socket
import struct
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from http import HTTPStatus
from types import MappingProxyType, TracebackType
from typing import Any, Final, cast

from aiohttp import web
from aiohttp.typedefs import Handler

from ._callbacks import CallbackSender
from ._dialects import DIALECTS, LIST_ROUTES, DialectName
from ._faults import Fault, Faults
from ._jobs import STEPS, TERMINAL, VIDEO_ACTIONS, FakeJob, JobBoard, now_ms
from ._png import grid_png
from ._stats import FakeStats, RecordedRequest

_dumps: Final = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
_DATA_URL: Final = re.compile(r"data:[\w.+/-]+;base64,(.+)", re.DOTALL)
_SECRET_HEADERS: Final = ("Authorization", "mj-api-secret", "x-api-key")
_BEFORE_HANDLER: Final = frozenset(
    {"http_500", "http_502", "http_503", "http_504", "http_429", "reset_before_record", "html", "empty"}
)
_CHILD_ACTIONS: Final = (
    ("MJ::JOB::upsample::", "UPSCALE"),
    ("MJ::JOB::upsample_", "UPSCALE_HD"),
    ("MJ::JOB::reroll::", ""),  # the parent's action
    ("MJ::JOB::pan_", "PAN"),
    ("MJ::Inpaint::", "VARIATION"),
    ("MJ::Outpaint::", "ZOOM"),
    ("MJ::CustomZoom::", "ZOOM"),
    ("MJ::JOB::", "VARIATION"),  # variation, low_variation, high_variation
)
_RELAY_ACTIONS: Final = {"MJ::Inpaint::": "INPAINT", "MJ::CustomZoom::": "CUSTOM_ZOOM"}
"""Relays name the always-modal children by their own actions (protocol.md 12.3)."""
_MODAL_BUTTONS: Final = ("MJ::Inpaint::", "MJ::CustomZoom::")
"""Buttons whose task always waits in MODAL; relays keep their code 21."""
_REMIX_BUTTONS: Final = (
    "MJ::JOB::variation::",
    "MJ::JOB::low_variation::",
    "MJ::JOB::high_variation::",
    "MJ::JOB::reroll::",
    "MJ::JOB::pan_",
)
"""Buttons whose task waits in MODAL when remix mode is on."""
_PUBLIC_PREFIXES: Final = ("/mj/image/", "/attachments/")
"""Routes served without a key (result images, uploads), like the CDN links they stand for."""
_DESCRIPTION: Final = "\n\n".join(
    f"{n} a simulated picture, flat colour blocks, {style} --ar 1:1"
    for n, style in zip(("1️⃣", "2️⃣", "3️⃣", "4️⃣"), ("minimal", "bauhaus", "pop art", "tiles"), strict=True)
)


class _Answer(Exception):
    """Raised by a handler to answer at once (a rejection)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _html(status: int, title: str) -> web.Response:
    page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1><hr>nginx</body></html>"
    return web.Response(status=status, text=page, content_type="text/html")


def _loads(raw: bytes) -> Any | None:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    return value if isinstance(value, str) else ""


def _task_id(value: Any) -> str:
    return str(value) if isinstance(value, (str, int)) else ""


def _is_data_url(value: Any) -> bool:
    match = _DATA_URL.fullmatch(value) if isinstance(value, str) else None
    try:
        return match is not None and bool(base64.b64decode(match[1], validate=True))
    except ValueError:
        return False


def _word_in(prompt: str, words: tuple[str, ...]) -> str | None:
    return next((w for w in words if w.lower() in prompt.lower()), None)


def _redacted(request: web.Request) -> Mapping[str, str]:
    headers = request.headers.copy()
    for name in _SECRET_HEADERS:
        if name in headers:
            headers[name] = "***"
    return headers


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _shortened(prompt: str) -> str:
    """A shorten analysis in the markdown shape Midjourney answers with."""
    words = prompt.split()
    options = [" ".join(words[: max(1, len(words) * n // 5)]) for n in range(5, 0, -1)]
    numbers = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣")
    return "**IMPORTANT TOKENS**\n" + ", ".join(words) + "\n\n**SHORTENED PROMPTS**\n" + "\n".join(
        f"{n} {option}" for n, option in zip(numbers, options, strict=True)
    )


def _route_group(path: str) -> str:
    if path.startswith(("/mj/submit/", "/mj/insight-face/")):
        return "submit"
    if path.endswith("/fetch"):
        return "fetch"
    if path in LIST_ROUTES:
        return "list"
    return "image" if path.startswith(_PUBLIC_PREFIXES) else "task_list"


def _abort(request: web.Request) -> web.Response:
    """Drop the connection with a TCP reset; the returned response is never written."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response()


class FakeProxy:
    """A stateful Midjourney proxy on loopback: the test, demo and benchmark backend."""

    def __init__(
        self,
        dialect: DialectName = "reference",
        *,
        job_seconds: float = 0.2,
        time_scale: float = 1.0,
        api_key: str | None = "sk-fake-key",
        host: str = "127.0.0.1",
        port: int = 0,
        concurrency: int | None = None,
        queue_size: int = 10,
        banned_words: Sequence[str] = ("nude",),
        fail_words: Sequence[str] = ("FAILJOB",),
        stuck_words: Sequence[str] = ("STUCKJOB",),
        server_timeout: float | None = None,
        list_by_condition: bool = True,
        remix: bool = False,
        save_lag: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {sorted(DIALECTS)}, not {dialect!r}")
        if job_seconds <= 0 or time_scale <= 0:
            raise ValueError("job_seconds and time_scale must be positive")
        self.dialect: DialectName = dialect
        self.api_key = api_key
        self._d = DIALECTS[dialect]
        self.auth = self._d.auth
        """The SDK auth style this dialect expects."""
        self.stats = FakeStats()
        self.requests: list[RecordedRequest] = []
        """Every routed request in arrival order."""
        self._rng = random.Random(seed)
        self.faults = Faults(self._rng)
        self._host, self._port = host, port
        self._banned, self._fail, self._stuck = tuple(banned_words), tuple(fail_words), tuple(stuck_words)
        self._missing = self._d.missing | (frozenset() if list_by_condition else LIST_ROUTES)
        self.remix = remix
        """Remix mode: variation, reroll and pan tasks wait in MODAL for `/submit/modal`."""
        self.save_lag = save_lag
        """Seconds after a job finishes during which actions on it still answer "parent not
        ready" (code 4), like servers whose SUCCESS is saved asynchronously."""
        self.uploads: dict[str, bytes] = {}
        """Images received by upload-discord-images, by file name (served under `/attachments/`)."""
        clock = job_seconds / time_scale
        # A short tick spreads completions (and their callbacks) as a real server does, not in bursts.
        self._tick = min(max(clock / len(STEPS), 0.002), 0.02)
        self._board = JobBoard(
            step_seconds=clock / (len(STEPS) - 1),
            server_timeout=None if server_timeout is None else server_timeout / time_scale,
            concurrency=concurrency,
            queue_size=queue_size,
            timeout_text=self._d.timeout_text,
            on_change=self._changed,
        )
        self.jobs: Mapping[str, FakeJob] = MappingProxyType(self._board.jobs)
        """Recorded jobs by id (read-only)."""
        self._callbacks = CallbackSender(self.stats, self.faults, self._rng)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self._runner is None:
            raise RuntimeError("FakeProxy is not started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def __aenter__(self) -> FakeProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen (on an ephemeral port when ``port=0``) and start the job clock."""
        app = web.Application(middlewares=[self._middleware], client_max_size=32 * 1024 * 1024)
        routes: list[tuple[str, str, Handler]] = [
            ("POST", "/mj/submit/imagine", self._imagine),
            ("POST", "/mj/submit/blend", self._blend),
            ("POST", "/mj/submit/describe", self._describe),
            ("POST", "/mj/submit/action", self._action),
            ("POST", "/mj/submit/modal", self._modal),
            ("POST", "/mj/submit/change", self._change),
            ("POST", "/mj/submit/simple-change", self._simple_change),
            ("POST", "/mj/submit/shorten", self._shorten),
            ("POST", "/mj/submit/upload-discord-images", self._upload),
            ("POST", "/mj/submit/edits", functools.partial(self._image_job, "EDIT")),
            ("POST", "/mj/submit/retexture", functools.partial(self._image_job, "RETEXTURE")),
            ("POST", "/mj/submit/video", self._video),
            ("POST", "/mj/insight-face/swap", self._swap_face),
            ("GET", "/mj/task/{id}/fetch", self._fetch),
            ("GET", "/mj/task/{id}/image-seed", self._image_seed),
            ("POST", "/mj/task/{id}/cancel", self._cancel),
            ("POST", "/mj/task/list-by-condition", self._list_by_ids),
            ("POST", "/mj/task/list-by-ids", self._list_by_ids),
            ("GET", "/mj/task/list", self._task_list),
            ("GET", "/mj/task/queue", self._task_queue),
            ("GET", "/mj/image/{id}", self._image),
            ("GET", "/attachments/{name}", self._attachment),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
            if self._d.mode_segment:
                app.router.add_route(method, f"/{{mode:{self._d.mode_segment}}}{path}", handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await self.start_listening()
        self._spawn(self._board.run(self._tick))

    async def close(self) -> None:
        """Stop the clock, cancel pending callbacks, close every connection."""
        if self._runner is None:
            return
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._callbacks.close()
        await self._runner.cleanup()
        self._runner = self._site = None

    async def stop_listening(self) -> None:
        """Close the listening socket and every open connection: new requests are refused."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        server = self._runner.server if self._runner is not None else None
        for connection in server.connections if server is not None else ():
            connection.force_close()
        await asyncio.sleep(0.01)  # lets clients on this loop see the close before reusing a connection

    async def start_listening(self) -> None:
        """Accept connections again, on the same port."""
        if self._runner is None or self._site is not None:
            return
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self._site = site
        self._port = self._runner.addresses[0][1]

    async def refuse_connections(self, seconds: float) -> None:
        """Refuse connections now; listen again on the same port after `seconds`, in the background."""
        await self.stop_listening()
        self._spawn(self._listen_after(seconds))

    async def _listen_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.start_listening()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- request pipeline: record, fault, 404, auth, handler, fault ---

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        info = request.match_info
        if info.http_exception is not None or info.route.resource is None:
            return await handler(request)
        path = info.route.resource.canonical.removeprefix("/{mode}")
        route = f"{request.method} {path}"
        raw = await request.read()
        self.stats.requests[route] += 1
        self.requests.append(
            RecordedRequest(request.method, route, request.path_qs, _loads(raw), _redacted(request))
        )
        fault = self.faults.pick(_route_group(path))
        if fault is not None and fault.kind in _BEFORE_HANDLER:
            await asyncio.sleep(fault.delay)
            return self._fault_response(request, fault)
        if path in self._missing:
            response = web.Response(status=404, text="404 page not found" if self._relay else None)
        elif not path.startswith(_PUBLIC_PREFIXES) and not self._authorized(request):
            response = self._unauthorized()
        else:
            try:
                response = cast(web.Response, await handler(request))
            except _Answer as answer:
                response = answer.response
        if fault is None:
            return response
        await asyncio.sleep(fault.delay)
        if fault.kind == "reset_after_record":
            return _abort(request)
        if fault.kind == "malformed_json":
            body = response.body if isinstance(response.body, bytes) else b""
            return web.Response(body=body[: len(body) // 2], content_type="application/json")
        return response

    @property
    def _relay(self) -> bool:
        return self.dialect == "relay"

    def _authorized(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        secret = request.headers.get("mj-api-secret", "")
        authorization = request.headers.get("Authorization", "")
        if self.dialect == "extended" and authorization:
            secret = authorization
        elif self._relay:
            token = authorization.removeprefix("Bearer ").strip()
            secret = token if token not in ("", "midjourney-proxy") else secret
        return hmac.compare_digest(secret.encode(), self.api_key.encode())

    def _unauthorized(self) -> web.Response:
        if self.dialect == "extended":
            return web.Response(status=401, text="Authorization header missing.")
        if self._relay:
            message = f"无效的令牌 (request id: {secrets.token_hex(12)})"
            return _json({"error": {"message": message, "type": "new_api_error"}}, 401)
        return web.Response(status=401)

    def _fault_response(self, request: web.Request, fault: Fault) -> web.Response:
        kind = fault.kind
        if kind == "reset_before_record":
            return _abort(request)
        if kind == "html":
            return _html(200, "Network login required")
        if kind == "empty":
            return web.Response()
        if kind == "http_429" and self._relay:
            message = "您已达到请求数限制：1分钟内最多请求60次"
            return _json({"error": {"message": message, "type": "new_api_error"}}, 429)
        status = int(kind.removeprefix("http_"))
        if status in (429, 503):
            return web.Response(status=status)
        return _html(status, f"{status} {HTTPStatus(status).phrase}")

    # --- answers ---

    def _error(
        self, code: int, text: str, properties: Mapping[str, Any] | None = None, *, status: int = 200
    ) -> _Answer:
        if self._relay and code in (3, 4):
            return _Answer(_json({"description": f"{text} ", "type": "upstream_error", "code": 4}, 400))
        envelope = {"code": code, "description": text, "result": None, "properties": properties or {}}
        return _Answer(_json(envelope, status))

    def _accepted(self, job: FakeJob, code: int = 1, text: str = "", **properties: Any) -> web.Response:
        job.submit_text = text or self._d.accepted
        return _json(
            {
                "code": 1 if self._relay and code == 22 else code,
                "description": job.submit_text,
                "result": int(job.id) if self._relay else job.id,
                "properties": {**self._d.instance, **properties},
            }
        )

    async def _body(self, request: web.Request) -> dict[str, Any]:
        body = _loads(await request.read())
        if isinstance(body, dict):
            return body
        if self.dialect == "extended":
            failure = {"success": False, "code": -1, "message": "请求参数错误", "timestamp": str(now_ms())}
            raise _Answer(_json(failure))
        raise self._error(4, "bind_request_body_failed", status=400)

    def _parent(self, task_id: str) -> FakeJob:
        job = self._board.jobs.get(task_id)
        if job is None:
            text = "task_not_found" if self._relay else "关联任务不存在或已失效"
            raise self._error(3, text, status=404 if self.dialect == "extended" else 200)
        return job

    # --- jobs ---

    def _new_id(self) -> str:
        while True:
            task_id = f"{now_ms()}{self._rng.randrange(1000):03d}"
            if task_id not in self._board.jobs:
                return task_id

    def _create(
        self,
        request: web.Request,
        body: Mapping[str, Any],
        action: str,
        prompt: str,
        description: str,
        *,
        final_prompt: str | None = None,
        parent: FakeJob | None = None,
        custom_id: str = "",
        modal: bool = False,
    ) -> web.Response:
        state = body.get("state")
        hook = _text(body, "notifyHook")
        segment = request.match_info.get("mode", "").upper()
        job = FakeJob(
            id=self._new_id(),
            action=action,
            prompt=prompt,
            state=state if isinstance(state, str) else None,
            description=description,
            dialect=self._d,
            base_url=self.url,
            hash=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            notify_hook=hook if hook and not self._relay else None,
            bot_type="NIJI_JOURNEY" if "NIJI" in _text(body, "botType").upper() else "MID_JOURNEY",
            mode=next((m for m in ("RELAX", "TURBO") if m in segment), "FAST"),
            parent_id=parent.id if parent is not None else None,
            custom_id=custom_id,
            final_prompt=prompt if final_prompt is None else final_prompt,
            fails=_word_in(prompt, self._fail) is not None,
            stuck=_word_in(prompt, self._stuck) is not None,
        )
        if modal:
            job.status = "MODAL"
            # Relays turn 21 into 1, except for Vary Region and Custom Zoom (protocol.md section 1).
            code = 1 if self._relay and not custom_id.startswith(_MODAL_BUTTONS) else 21
            answer = self._accepted(job, code, "Waiting for window confirm", finalPrompt=prompt, remix=True)
        else:
            answer = self._start(job)
        self._board.jobs[job.id] = job
        self.stats.accepted_submits += 1
        self.stats.submits_by_state[job.state or ""] += 1
        return answer

    def _start(self, job: FakeJob) -> web.Response:
        """Give `job` a slot (code 1) or a waiting place (22); a full queue raises 23 or 9."""
        position = self._board.admit(job)
        if position is None:
            code, text = self._d.queue_full
            raise self._error(code, text, self._d.instance)
        if not position:
            return self._accepted(job)
        return self._accepted(job, 22, f"排队中，前面还有{position}个任务", numberOfQueues=position)

    def _press(
        self, request: web.Request, body: Mapping[str, Any], parent: FakeJob, custom_id: str
    ) -> web.Response:
        """Create the child job of pressing button `custom_id` on `parent`."""
        if parent.status != "SUCCESS" or self._saving(parent):
            raise self._error(4, "task_status_not_success" if self._relay else "关联任务状态错误")
        button = next((b for b in parent.buttons if b["customId"] == custom_id), None)
        if button is None:
            raise self._error(4, f"unknown_action:{custom_id}" if self._relay else "未知的 Action 类型")
        action = next(a for prefix, a in _CHILD_ACTIONS if custom_id.startswith(prefix))
        if self._relay:
            action = next((a for p, a in _RELAY_ACTIONS.items() if custom_id.startswith(p)), action)
        return self._create(
            request,
            body,
            action or parent.action,
            parent.prompt,
            f"/up {parent.id} {button['label'] or button['emoji'] or 'R'}",
            parent=parent,
            custom_id=custom_id,
            modal=custom_id.startswith(_MODAL_BUTTONS)
            or (self.remix and custom_id.startswith(_REMIX_BUTTONS)),
        )

    def _saving(self, job: FakeJob) -> bool:
        """True while a finished job is inside `save_lag` (actions on it still fail)."""
        return job.finish_time is not None and now_ms() - job.finish_time < self.save_lag * 1000

    def _change_to(
        self, request: web.Request, body: Mapping[str, Any], parent: FakeJob, action: str, index: str
    ) -> web.Response:
        custom_id = {
            "UPSCALE": f"MJ::JOB::upsample::{index}::{parent.hash}",
            "VARIATION": f"MJ::JOB::variation::{index}::{parent.hash}",
            "REROLL": f"MJ::JOB::reroll::0::{parent.hash}::SOLO",
        }.get(action, "")
        return self._press(request, body, parent, custom_id)

    def _changed(self, job: FakeJob) -> None:
        if job.notify_hook:
            self._callbacks.send(job.notify_hook, job.id, job.task_json())

    # --- handlers ---

    async def _imagine(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        prompt = self._prompt(body)
        images = body.get("base64Array") or []
        if not isinstance(images, list) or not all(map(_is_data_url, images)):
            raise self._error(4, "base64格式错误")
        banned = _word_in(prompt, self._banned)
        if banned is not None:
            raise self._error(24, "可能包含敏感词", {"promptEn": prompt, "bannedWord": banned})
        return self._create(request, body, "IMAGINE", prompt, f"/imagine {prompt}")

    async def _blend(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        images = body.get("base64Array")
        if not isinstance(images, list) or not 2 <= len(images) <= 5:
            raise self._error(4, "图片参数错误，2~5张图片")
        if not all(map(_is_data_url, images)):
            raise self._error(4, "base64格式错误")
        return self._create(request, body, "BLEND", "", f"/blend {len(images)} images")

    async def _describe(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        link = self.dialect == "extended" and _is_url(body.get("link"))  # ext also takes a URL
        if not (_is_data_url(body.get("base64")) or link):
            raise self._error(4, "base64格式错误")
        return self._create(request, body, "DESCRIBE", "", "/describe", final_prompt=_DESCRIPTION)

    async def _shorten(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        prompt = self._prompt(body)
        analysis = _shortened(prompt)
        return self._create(request, body, "SHORTEN", prompt, f"/shorten {prompt}", final_prompt=analysis)

    async def _upload(self, request: web.Request) -> web.Response:
        """upload-discord-images: no task, `result` is one URL per image (served by this fake)."""
        images = (await self._body(request)).get("base64Array")
        if not isinstance(images, list) or not images or not all(map(_is_data_url, images)):
            raise self._error(4, "base64格式错误")
        urls = []
        for image in images:
            name = f"{uuid.UUID(int=self._rng.getrandbits(128), version=4)}.png"
            self.uploads[name] = base64.b64decode(image.split(",", 1)[1])
            urls.append(f"{self.url}/attachments/{name}")
        return _json({"code": 1, "description": self._d.accepted, "result": urls, "properties": {}})

    async def _image_job(self, action: str, request: web.Request) -> web.Response:
        """edits and retexture: a prompt and one image (a data URL or an http(s) URL)."""
        body = await self._body(request)
        prompt = self._prompt(body)
        if not (_is_data_url(body.get("image")) or _is_url(body.get("image"))):
            raise self._error(4, "base64格式错误")
        return self._create(request, body, action, prompt, f"/{action.lower()} {prompt}")

    async def _video(self, request: web.Request) -> web.Response:
        """A video from a start image, or (`action: extend`) a longer one of a finished video job."""
        body = await self._body(request)
        prompt = self._prompt(body)
        if body.get("motion", "low") not in ("low", "high"):
            raise self._error(4, "motion参数错误")
        if body.get("action") == "extend":
            parent = self._parent(_task_id(body.get("taskId")))
            if parent.action not in VIDEO_ACTIONS or parent.status != "SUCCESS":
                raise self._error(4, "关联任务状态错误")
            if body.get("index") not in (0, 1, 2, 3):
                raise self._error(4, "index参数错误")
            description = f"/video extend {parent.id} {body['index']}"
            return self._create(request, body, "VIDEO_EXTEND", prompt, description, parent=parent)
        if not (_is_data_url(body.get("image")) or _is_url(body.get("image"))):
            raise self._error(4, "base64格式错误")
        return self._create(request, body, "VIDEO", prompt, f"/video {prompt}")

    def _prompt(self, body: Mapping[str, Any]) -> str:
        prompt = _text(body, "prompt")
        if not prompt.strip():
            raise self._error(4, "prompt_is_required" if self._relay else "prompt不能为空")
        return prompt

    async def _swap_face(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        for side in ("source", "target"):
            if not (_is_data_url(body.get(f"{side}Base64")) or _is_url(body.get(f"{side}Url"))):
                raise self._error(4, "base64格式错误")
        return self._create(request, body, "SWAP_FACE", "", "/swap_face")

    async def _action(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        custom_id = _text(body, "customId")
        if self._relay and not custom_id:
            raise self._error(4, "custom_id_is_required")
        parent = self._parent(_task_id(body.get("taskId")))
        return self._press(request, body, parent, custom_id)

    async def _modal(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        job = self._parent(_task_id(body.get("taskId")))
        if job.status != "MODAL":
            raise self._error(4, "关联任务状态错误")
        prompt = _text(body, "prompt").strip()
        if prompt:
            job.prompt = job.final_prompt = prompt
        answer = self._start(job)
        job.status = "NOT_START"
        return answer

    async def _change(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        index = body.get("index")
        if self._relay and index is None:  # relays require an index, even for REROLL
            raise self._error(4, "index_is_required")
        parent = self._parent(_task_id(body.get("taskId")))
        return self._change_to(request, body, parent, _text(body, "action"), _task_id(index))

    async def _simple_change(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        match = re.fullmatch(r"\s*(\d+)\s+(?:([UV])([1-4])|R)\s*", _text(body, "content"))
        if match is None:
            raise self._error(4, "content参数错误")
        action = {"U": "UPSCALE", "V": "VARIATION"}.get(match[2] or "", "REROLL")
        return self._change_to(request, body, self._parent(match[1]), action, match[3] or "")

    async def _fetch(self, request: web.Request) -> web.Response:
        job = self._board.jobs.get(request.match_info["id"])
        if job is not None:
            return _json(job.task_json())
        if self.dialect == "reference":
            return web.Response()
        raise self._error(3, "task_no_found" if self._relay else "任务不存在", status=404)

    async def _image_seed(self, request: web.Request) -> web.Response:
        job = self._known(request.match_info["id"])
        if job.status != "SUCCESS":
            raise self._error(3, "未找到 seed")
        return _json({"code": 1, "description": "成功", "result": job.seed, "properties": {}})

    async def _cancel(self, request: web.Request) -> web.Response:
        """The extended server's admin cancel: an empty 200; the job ends in FAILURE `取消任务`."""
        self._board.cancel(self._known(request.match_info["id"]), "取消任务")
        return web.Response()

    def _known(self, task_id: str) -> FakeJob:
        job = self._board.jobs.get(task_id)
        if job is None:
            raise self._error(3, "task_not_found" if self._relay else "任务不存在", status=404)
        return job

    async def _list_by_ids(self, request: web.Request) -> web.Response:
        ids = (await self._body(request)).get("ids")
        wanted = [_task_id(i) for i in ids] if isinstance(ids, list) else []
        self.stats.list_batches.append(len(wanted))
        jobs = self._board.jobs
        found = [jobs[i].task_json() for i in dict.fromkeys(wanted) if i in jobs]
        self._rng.shuffle(found)
        return _json(found)

    async def _task_list(self, request: web.Request) -> web.Response:
        newest = reversed(self._board.jobs.values())
        limit = 100 if self.dialect == "extended" else None
        return _json([job.task_json() for job in itertools.islice(newest, limit)])

    async def _task_queue(self, request: web.Request) -> web.Response:
        jobs = self._board.jobs.values()
        return _json([job.task_json() for job in jobs if job.status not in TERMINAL])

    async def _image(self, request: web.Request) -> web.Response:
        job = self._board.jobs.get(request.match_info["id"])
        if job is None:
            return web.Response(status=404)
        return web.Response(body=grid_png(job.hash), content_type="image/png")

    async def _attachment(self, request: web.Request) -> web.Response:
        image = self.uploads.get(request.match_info["name"])
        if image is None:
            return web.Response(status=404)
        return web.Response(body=image, content_type="image/png")


async def serve(port: int, *, dialect: str = "reference", host: str = "127.0.0.1", **kwargs: Any) -> None:
    """Run a FakeProxy until cancelled, printing one line with its URL, API key and auth style."""
    async with FakeProxy(cast(DialectName, dialect), host=host, port=port, **kwargs) as fake:
        print(
            f"mjasync simulator ({fake.dialect}) at {fake.url}  api_key={fake.api_key}  auth={fake.auth}",
            flush=True,
        )
        await asyncio.Event().wait()
