"""A hostile forwarding gateway in front of FakeProxy: the answers real gateways give after forwarding."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

import aiohttp
from aiohttp import web

from mjasync.testing import FakeProxy

SubmitMode = Literal["pass", "json_5xx", "late", "code9", "slow", "no_account"]
ListMode = Literal["pass", "paged", "no_state"]

_HOP: frozenset[str] = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class Gateway:
    """Forwards every request to `fake`; submits and lists are answered as `submit`/`lists` say.

    json_5xx: forward, then answer `status` with `body`. late: answer 504 at once, forward after
    `delay` s. code9: forward, then answer code 9. slow: forward, hold the answer `delay` s.
    no_account: answer code 3 `无可用的账号实例` without forwarding, `times` times (None: always).
    paged: list answers as {"content": newest 10, "totalElements": N}. no_state: list entries
    lose `state`. `plus_query`: serve POST /mj/task/query matching `state` exactly (plus server),
    and 404 the list and queue.
    """

    def __init__(
        self,
        fake: FakeProxy,
        *,
        submit: SubmitMode = "pass",
        lists: ListMode = "pass",
        plus_query: bool = False,
        status: int = 502,
        body: Any = None,
        delay: float = 0.0,
        times: int | None = None,
    ) -> None:
        self.fake = fake
        self.submit = submit
        self.lists = lists
        self.plus_query = plus_query
        self.status = status
        self.body = body
        self.delay = delay
        self.times = times
        self.submit_calls = 0
        """Submits this gateway received (what the SDK paid for, if each were forwarded)."""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self.url = ""

    async def __aenter__(self) -> Gateway:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._pending:
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        assert self._session is not None and self._runner is not None
        await self._session.close()
        await self._runner.cleanup()

    async def settled(self) -> None:
        """Wait until every late forward has reached FakeProxy."""
        await asyncio.gather(*self._pending)

    async def _forward(self, request: web.Request, raw: bytes) -> tuple[int, bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.request(
            request.method, self.fake.url + request.path_qs, data=raw or None, headers=headers
        ) as answer:
            return answer.status, await answer.read()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        path = request.path
        if path.startswith("/mj/submit/"):
            return await self._submit(request, raw)
        if self.plus_query and path in ("/mj/task/list", "/mj/task/queue"):
            return web.json_response({"error": "Not Found"}, status=404)
        if self.plus_query and path == "/mj/task/query":
            wanted = json.loads(raw or b"{}").get("state")
            status, listed = await self._forward_get(request, "/mj/task/list")
            tasks = [t for t in json.loads(listed) if t.get("state") == wanted] if status == 200 else []
            return web.json_response(tasks)
        status, answer = await self._forward(request, raw)
        if status == 200 and path in ("/mj/task/list", "/mj/task/queue") and self.lists != "pass":
            tasks = json.loads(answer)
            if self.lists == "paged":
                return web.json_response({"content": tasks[:10], "totalElements": len(tasks)})
            return web.json_response([{k: v for k, v in t.items() if k != "state"} for t in tasks])
        return web.Response(status=status, body=answer, content_type="application/json")

    async def _forward_get(self, request: web.Request, path: str) -> tuple[int, bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.get(self.fake.url + path, headers=headers) as answer:
            return answer.status, await answer.read()

    async def _submit(self, request: web.Request, raw: bytes) -> web.StreamResponse:
        self.submit_calls += 1
        mode = self.submit
        if mode == "no_account":
            if self.times is None or self.times > 0:
                if self.times is not None:
                    self.times -= 1
                return web.json_response({"code": 3, "description": "无可用的账号实例", "result": None})
            mode = "pass"
        if mode == "late":
            task = asyncio.get_running_loop().create_task(self._late(request, raw))
            self._pending.add(task)
            return web.json_response({"error": {"message": "upstream timed out", "type": "upstream_error"}},
                                     status=504)
        status, answer = await self._forward(request, raw)
        if mode == "json_5xx":
            return web.json_response(self.body, status=self.status)
        if mode == "code9":
            return web.json_response({"code": 9, "description": "提交失败，系统异常", "result": None})
        if mode == "slow":
            await asyncio.sleep(self.delay)
        return web.Response(status=status, body=answer, content_type="application/json")

    async def _late(self, request: web.Request, raw: bytes) -> None:
        await asyncio.sleep(self.delay)
        await self._forward(request, raw)
