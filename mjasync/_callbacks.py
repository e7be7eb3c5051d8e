"""notifyHook intake: token check, size limit, parsing, then a hint to the poller."""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import cattrs

from . import _validate as check
from ._convert import structure
from ._exceptions import ClientClosedError, InvalidCallbackError, InvalidRequestError
from ._listener import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Guard
from ._logging import logger, redact_url, register_secret
from ._models import TaskInfo
from ._transport import read_capped

if TYPE_CHECKING:
    from aiohttp import web
    from aiohttp.typedefs import Handler

    from ._poller import Poller

__all__ = ["Callbacks"]

DEFAULT_MAX_BODY: Final = 1024 * 1024
"""Bytes: a larger callback body is refused (413) without being read whole."""
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{22,256}")
"""A caller-chosen token: 22 url-safe characters carry 128 random bits."""


class Callbacks:
    """Receives the server's notifyHook POSTs and turns them into wake-ups for waiting tasks.

    A callback is a hint: it wakes waiters at once, but a terminal status counts only once a
    fetch confirms it, so a forged or stale SUCCESS never resolves a task.
    """

    def __init__(self, *, max_body: int = DEFAULT_MAX_BODY) -> None:
        self._pollers: list[Poller] = []
        """The pollers of the client and its copies: a callback wakes whichever waits."""
        self.max_body = max_body
        self._token = register_secret(secrets.token_urlsafe(24))
        self._public_url: str | None = None
        self._runner: web.AppRunner | None = None  # aiohttp.web is imported only when used
        self._listener: asyncio.Server | None = None
        self._closed = False
        self._forward: Callable[[bytes], None] | None = None

    def __repr__(self) -> str:
        where = redact_url(self._public_url) if self._public_url else "not configured"
        return f"<mjasync.Callbacks {where}>"

    @property
    def configured(self) -> bool:
        return self._public_url is not None

    @property
    def hook_url(self) -> str | None:
        """`<public_url>/<token>`, sent as `notifyHook` with every submit. A secret: do not log it."""
        if self._public_url is None:
            return None
        return register_secret(f"{self._public_url}/{self._token}")

    def attach(self, poller: Poller) -> None:
        """Hand callbacks to `poller` too (each client sharing this intake attaches its own)."""
        self._pollers.append(poller)

    def detach(self, poller: Poller) -> None:
        """Stop handing callbacks to `poller`; a poller not attached is ignored."""
        if poller in self._pollers:
            self._pollers.remove(poller)

    def pollers(self) -> tuple[Poller, ...]:
        """The pollers attached now."""
        return tuple(self._pollers)

    def forward(self, publish: Callable[[bytes], None]) -> None:
        """Hand every accepted callback that nothing here waits for to `publish` (the replicas'
        bus): another replica sharing the store may follow that task."""
        self._forward = publish

    def relay(self, body: bytes) -> None:
        """Take a callback that another replica accepted (its token checked there); it is a hint
        like any other, and never forwarded again."""
        try:
            info = _parse(body)
        except InvalidCallbackError:
            logger.warning("a relayed callback is not a task; ignored")
            return
        self._hint(info)

    def configure(self, public_url: str, *, token: str | None = None) -> None:
        """Say where the server can reach this process's receiver; submits then carry the hook.

        Pass your own `token` (at least 22 url-safe characters, kept in your secret store) to
        accept the callbacks of jobs submitted before a restart; by default a random one is made.
        """
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise InvalidRequestError("public_url must be an http(s) URL without query or fragment")
        if token is not None:
            if not _TOKEN.fullmatch(token):
                raise InvalidRequestError("token must be at least 22 characters of A-Z, a-z, 0-9, - and _")
            self._token = register_secret(token)
        self._public_url = public_url.rstrip("/")

    async def deliver(self, body: bytes, token: str) -> None:
        """Take one callback from any framework: raises InvalidCallbackError when it is refused."""
        if not self._token_matches(token):
            raise InvalidCallbackError("callback refused: the token does not match")
        if len(body) > self.max_body:
            raise InvalidCallbackError(f"callback refused: the body is over {self.max_body} bytes")
        self._accept(body)

    def aiohttp_handler(self) -> Handler:
        """A handler to mount on your aiohttp app at a route ending in `{token}`, for example
        `app.router.add_post("/mj-hooks/{token}", mj.callbacks.aiohttp_handler())`."""
        from aiohttp import web

        async def handle(request: web.Request) -> web.StreamResponse:
            if not self._token_matches(request.match_info.get("token", "")):
                return web.Response(status=401, text="unauthorized")
            body = await _read_capped(request, self.max_body)
            if body is None:
                return web.Response(status=413, text="body too large")
            try:
                self._accept(body)
            except InvalidCallbackError as exc:
                return web.Response(status=400, text=str(exc))
            return web.Response(status=200, text="ok")

        return handle

    async def serve(
        self,
        host: str = "0.0.0.0",
        port: int = 8787,
        *,
        public_url: str | None = None,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> str:
        """Run a small receiver on `host:port` until the client closes; returns its local URL.

        `public_url` is how the proxy server reaches it (through your reverse proxy, say); its
        path is part of the route. Without it, the local URL is used. A connection that has not
        sent its request headers within `header_timeout` seconds is closed, and at most
        `max_connections` are held open at once (more are closed as they connect); each
        connection carries one request.
        """
        from aiohttp import web

        if self._closed:
            raise ClientClosedError("this Client is closed; create a new one to serve callbacks")
        if self._runner is not None:
            raise InvalidRequestError("callbacks are already being served")
        check.timeout(header_timeout, "header_timeout")
        check.at_least(max_connections, 1, "max_connections")
        path = urlsplit(public_url).path.rstrip("/") if public_url else ""
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post(f"{path}/{{token}}", self.aiohttp_handler())
        # aiohttp closes a connection that is idle this long, counted from connecting too; a
        # request whose headers are still arriving leaves it idle.
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=header_timeout)
        await runner.setup()
        assert runner.server is not None, "set up above"
        guard = Guard(runner.server, max_connections=max_connections)
        try:
            listener = await asyncio.get_running_loop().create_server(guard, host, port, reuse_address=True)
        except OSError:
            await runner.cleanup()
            raise
        self._runner, self._listener = runner, listener
        bound_host, bound_port = listener.sockets[0].getsockname()[:2]
        local = f"http://{'127.0.0.1' if bound_host in ('0.0.0.0', '::') else bound_host}:{bound_port}"
        self.configure(public_url or local + path)
        logger.info("serving callbacks on %s:%d", host, bound_port)
        return local + path

    async def close(self) -> None:
        """Stop the receiver started by serve(), if any; serve() refuses to start another."""
        self._closed = True
        runner, self._runner = self._runner, None
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()  # no new connections
        if runner is not None:
            await runner.cleanup()  # ends the open ones
        if listener is not None:
            await listener.wait_closed()

    def _token_matches(self, token: object) -> bool:
        """A constant-time comparison; anything but an ASCII string (a lone surrogate, bytes) is
        simply a token that does not match."""
        if not isinstance(token, str) or not token.isascii():
            return False
        return hmac.compare_digest(token.encode(), self._token.encode())

    def _accept(self, body: bytes) -> None:
        info = _parse(body)
        if self._hint(info):
            return
        if self._forward is not None:
            self._forward(body)
        else:
            logger.debug("callback for task %s that nothing here waits for; ignored", info.id)

    def _hint(self, info: TaskInfo) -> bool:
        """Hand a callback's snapshot to every poller; True when one of them waits for it."""
        known = False
        for poller in self._pollers:
            known = poller.hint(info) or known
        return known


def _parse(body: bytes) -> TaskInfo:
    try:
        return structure(json.loads(body), TaskInfo)
    except (ValueError, TypeError, RecursionError, cattrs.BaseValidationError) as exc:
        raise InvalidCallbackError("callback refused: the body is not a task") from exc


async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to be over `limit` bytes."""
    if request.content_length is not None:
        # read() caches, so a middleware that looked at the body first does no harm.
        return None if request.content_length > limit else await request.read()
    return await read_capped(request.content, limit)
