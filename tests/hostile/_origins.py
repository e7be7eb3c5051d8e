"""Small loopback aiohttp servers that answer every request from a function and record what came in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType

import attrs
from aiohttp import web

SUBMITTED = {"code": 1, "description": "提交成功", "result": "1234"}
TASK = {"id": "1234", "status": "SUCCESS", "progress": "100%", "imageUrl": "http://127.0.0.1:9/x.png"}


@attrs.frozen
class Received:
    """One request as the server saw it."""

    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes


Answer = Callable[["Origin", web.Request], Awaitable[web.StreamResponse]]


async def answer_ok(origin: Origin, request: web.Request) -> web.StreamResponse:
    """A submit's success envelope on a submit path, else a finished task (whatever the method)."""
    return web.json_response(SUBMITTED if "/submit/" in request.path else TASK)


class Origin:
    """One origin (127.0.0.1:<port>) answering with `answer`; `received` lists every request."""

    def __init__(self, answer: Answer = answer_ok) -> None:
        self.answer = answer
        self.received: list[Received] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(Received(request.method, request.path_qs, dict(request.headers), body))
        return await self.answer(self, request)

    async def __aenter__(self) -> Origin:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
