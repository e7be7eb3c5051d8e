"""FakeProxy: the /mj API of the three server families on a real loopback aiohttp server.

This module runs the server: lifecycle, routes and the request pipeline (record, fault, 404,
auth). `_handlers` answers the endpoints, and the `Dialect` says how each family differs.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import random
import socket
import struct
from collections.abc import Coroutine, Mapping, Sequence
from http import HTTPStatus
from types import MappingProxyType, TracebackType
from typing import Any, Final, cast

from aiohttp import web
from aiohttp.typedefs import Handler

from ._answers import Answer, html_page
from ._callbacks import CallbackSender
from ._dialects import DIALECTS, LIST_ROUTES, DialectName
from ._faults import Fault, Faults
from ._handlers import Handlers
from ._inputs import read_json
from ._jobs import STEPS, FakeJob, JobBoard
from ._stats import FakeStats, RecordedRequest

__all__ = ["FakeProxy", "serve"]

_SECRET_HEADERS: Final = ("Authorization", "mj-api-secret", "x-api-key")
_BEFORE_HANDLER: Final = frozenset(
    {"http_500", "http_502", "http_503", "http_504", "http_429", "reset_before_record", "html", "empty"}
)
_PUBLIC_PREFIXES: Final = ("/mj/image/", "/attachments/")
"""Routes served without a key (result images, uploads), like the CDN links they stand for."""


def _redacted(request: web.Request) -> Mapping[str, str]:
    headers = request.headers.copy()
    for name in _SECRET_HEADERS:
        if name in headers:
            headers[name] = "***"
    return headers


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
    """A stateful Midjourney proxy on loopback: the test, demo and benchmark backend.

    Each dialect answers as that server family's own code does (protocol.md section 14; see the
    `Dialect` subclasses). `upstream_poll_seconds` (divided by `time_scale`, like `job_seconds`)
    is when the relay first polls its upstream for a new task: until then a relay task shows
    `status: ""`, `state: ""`, no buttons or properties. Real relays poll every ~15 s; the default,
    one progress step (`job_seconds / 7`), keeps that phase visible but short. Other dialects
    ignore it.
    """

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
        upstream_poll_seconds: float | None = None,
    ) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {sorted(DIALECTS)}, not {dialect!r}")
        if job_seconds <= 0 or time_scale <= 0:
            raise ValueError("job_seconds and time_scale must be positive")
        if upstream_poll_seconds is not None and upstream_poll_seconds < 0:
            raise ValueError("upstream_poll_seconds must not be negative")
        self.dialect: DialectName = dialect
        self.api_key = api_key
        self._dialect = DIALECTS[dialect]
        self.auth = self._dialect.auth
        """The SDK auth style this dialect expects."""
        self.stats = FakeStats()
        self.requests: list[RecordedRequest] = []
        """Every routed request in arrival order."""
        self._rng = random.Random(seed)
        self.faults = Faults(self._rng)
        self._host, self._port = host, port
        self._missing = self._dialect.missing | (frozenset() if list_by_condition else LIST_ROUTES)
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
        step = clock / (len(STEPS) - 1)
        self._board = JobBoard(
            step_seconds=step,
            server_timeout=None if server_timeout is None else server_timeout / time_scale,
            concurrency=concurrency,
            queue_size=queue_size,
            timeout_text=self._dialect.timeout_text,
            on_change=self._changed,
        )
        self.jobs: Mapping[str, FakeJob] = MappingProxyType(self._board.jobs)
        """Recorded jobs by id (read-only)."""
        self._handlers = Handlers(
            self._dialect,
            self._board,
            self.stats,
            self._rng,
            self,
            banned_words=banned_words,
            fail_words=fail_words,
            stuck_words=stuck_words,
            upstream_poll=step if upstream_poll_seconds is None else upstream_poll_seconds / time_scale,
        )
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
        h = self._handlers
        routes: list[tuple[str, str, Handler]] = [
            ("POST", "/mj/submit/imagine", h.imagine),
            ("POST", "/mj/submit/blend", h.blend),
            ("POST", "/mj/submit/describe", h.describe),
            ("POST", "/mj/submit/action", h.action),
            ("POST", "/mj/submit/modal", h.modal),
            ("POST", "/mj/submit/change", h.change),
            ("POST", "/mj/submit/simple-change", h.simple_change),
            ("POST", "/mj/submit/shorten", h.shorten),
            ("POST", "/mj/submit/upload-discord-images", h.upload),
            ("POST", "/mj/submit/edits", functools.partial(h.image_job, "EDIT")),
            ("POST", "/mj/submit/retexture", functools.partial(h.image_job, "RETEXTURE")),
            ("POST", "/mj/submit/video", h.video),
            ("POST", "/mj/insight-face/swap", h.swap_face),
            ("GET", "/mj/task/{id}/fetch", h.fetch),
            ("GET", "/mj/task/{id}/image-seed", h.image_seed),
            ("POST", "/mj/task/{id}/cancel", h.cancel),
            ("POST", "/mj/task/list-by-condition", h.list_by_ids),
            ("POST", "/mj/task/list-by-ids", h.list_by_ids),
            ("GET", "/mj/task/list", h.task_list),
            ("GET", "/mj/task/queue", h.task_queue),
            ("GET", "/mj/image/{id}", h.image),
            ("GET", "/attachments/{name}", h.attachment),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
            if self._dialect.mode_segment:
                app.router.add_route(method, f"/{{mode:{self._dialect.mode_segment}}}{path}", handler)
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
            RecordedRequest(request.method, route, request.path_qs, read_json(raw), _redacted(request))
        )
        fault = self.faults.pick(_route_group(path))
        if fault is not None and fault.kind in _BEFORE_HANDLER:
            await asyncio.sleep(fault.delay)
            return self._fault_response(request, fault)
        refused = not path.startswith(_PUBLIC_PREFIXES) and not self._authorized(request)
        if refused and self._dialect.auth_first:
            response = self._dialect.unauthorized()
        elif path in self._missing:
            response = self._dialect.not_served()
        elif refused:
            response = self._dialect.unauthorized()
        else:
            try:
                response = cast(web.Response, await handler(request))
            except Answer as answer:
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

    def _authorized(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        secret = self._dialect.sent_key(request.headers)
        return hmac.compare_digest(secret.encode(), self.api_key.encode())

    def _fault_response(self, request: web.Request, fault: Fault) -> web.Response:
        kind = fault.kind
        if kind == "reset_before_record":
            return _abort(request)
        if kind == "html":
            return html_page(200, "Network login required")
        if kind == "empty":
            return web.Response()
        if kind == "http_429":
            return self._dialect.rate_limited()
        status = int(kind.removeprefix("http_"))
        if status == 503:
            return web.Response(status=503)
        return html_page(status, f"{status} {HTTPStatus(status).phrase}")

    def _changed(self, job: FakeJob) -> None:
        if job.notify_hook:
            self._callbacks.send(job.notify_hook, job.id, job.task_json())


async def serve(port: int, *, dialect: str = "reference", host: str = "127.0.0.1", **kwargs: Any) -> None:
    """Run a FakeProxy until cancelled, printing one line with its URL, API key and auth style."""
    async with FakeProxy(cast(DialectName, dialect), host=host, port=port, **kwargs) as fake:
        print(
            f"mjasync simulator ({fake.dialect}) at {fake.url}  api_key={fake.api_key}  auth={fake.auth}",
            flush=True,
        )
        await asyncio.Event().wait()
