"""One odd poll answer must not fail every wait or change how polling is done (issue 11, item 9).

A small aiohttp server in front of FakeProxy forwards every request, except that it answers the
next list-by-condition calls from a script (a 401, a WAF's HTML 403, an HTML 404 page).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

import mjasync
from mjasync.testing import FakeProxy
from tests.conftest import FAST, SETTLE_TIMEOUT

LIST = "/mj/task/list-by-condition"
JOBS = 20


def html(status: int, title: str) -> web.Response:
    page = f"<html><head><title>{status} {title}</title></head><body><h1>{title}</h1></body></html>"
    return web.Response(status=status, text=page, content_type="text/html")


class Front:
    """Forwards to FakeProxy; `script` answers the next list-by-condition calls instead."""

    def __init__(self, fake: FakeProxy) -> None:
        self.fake = fake
        self.script: list[web.Response] = []
        self.seen: Counter[str] = Counter()
        self.url = ""
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Front:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None and self._session is not None
        await self._runner.cleanup()
        await self._session.close()

    def kind(self, request: web.Request) -> str:
        if request.path == LIST:
            return "list"
        if request.path.endswith("/fetch"):
            return "fetch"
        return request.path

    async def forward(self, request: web.Request) -> web.StreamResponse:
        kind = self.kind(request)
        self.seen[kind] += 1
        if kind == "list" and self.script:
            return self.script.pop(0)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.request(
            request.method, self.fake.url + request.path_qs, headers=headers, data=await request.read()
        ) as answer:
            body = await answer.read()
            return web.Response(status=answer.status, body=body, content_type=answer.content_type)


@pytest.fixture
async def fake() -> AsyncIterator[FakeProxy]:
    async with FakeProxy("reference", job_seconds=0.4, seed=5) as proxy:
        yield proxy


@pytest.fixture
async def front(fake: FakeProxy) -> AsyncIterator[Front]:
    async with Front(fake) as server:
        yield server


def client(front: Front, fake: FakeProxy) -> mjasync.Client:
    return mjasync.Client(front.url, fake.api_key, auth=fake.auth, **{**FAST, "poll_interval": 0.02})


async def wait_all(mj: mjasync.Client, front: Front, script: list[web.Response]) -> list[mjasync.TaskInfo]:
    tasks = [await mj.imagine(f"fox {i}") for i in range(JOBS)]
    front.script = script
    return await asyncio.wait_for(asyncio.gather(*(t.wait() for t in tasks)), SETTLE_TIMEOUT)


@pytest.mark.parametrize(
    "answer",
    [
        lambda: web.Response(status=401, text="Unauthorized"),
        lambda: html(403, "Forbidden: request blocked by the web application firewall"),
    ],
    ids=["401", "waf-403-html"],
)
async def test_one_refused_poll_does_not_fail_the_waits(fake: FakeProxy, front: Front, answer: object) -> None:
    async with client(front, fake) as mj:
        results = await wait_all(mj, front, [answer()])  # type: ignore[operator]
    assert [r.status for r in results] == [mjasync.TaskStatus.SUCCESS] * JOBS
    assert front.script == []  # the scripted answer was given


async def test_two_refused_polls_in_a_row_do_not_fail_the_waits(fake: FakeProxy, front: Front) -> None:
    async with client(front, fake) as mj:
        results = await wait_all(mj, front, [web.Response(status=401, text="no"), html(403, "Forbidden")])
    assert all(r.succeeded for r in results)


async def test_a_key_refused_again_and_again_still_fails_the_waits(fake: FakeProxy, front: Front) -> None:
    async with client(front, fake) as mj:
        tasks = [await mj.imagine(f"fox {i}") for i in range(3)]
        front.script = [web.Response(status=401, text="Unauthorized") for _ in range(10_000)]
        for task in tasks:
            with pytest.raises(mjasync.AuthenticationError):
                await asyncio.wait_for(task.wait(), SETTLE_TIMEOUT)


@pytest.mark.parametrize("status", [404, 405])
async def test_one_html_404_page_does_not_switch_polling_to_one_fetch_per_id(
    fake: FakeProxy, front: Front, status: int
) -> None:
    async with client(front, fake) as mj:
        results = await wait_all(mj, front, [html(status, "Not Found")])
        lists_after_the_page = front.seen["list"] - 1
    assert all(r.succeeded for r in results)
    assert lists_after_the_page >= 1  # it went back to the batched endpoint
    assert front.seen["fetch"] < JOBS  # not one fetch per id per tick


async def test_a_server_without_list_by_condition_is_still_polled_id_by_id(
    fake: FakeProxy, front: Front
) -> None:
    async with client(front, fake) as mj:
        results = await wait_all(mj, front, [html(404, "Not Found") for _ in range(10_000)])
        lists = front.seen["list"]
    assert all(r.succeeded for r in results)
    assert lists <= 5  # a few consistent answers, then per-id fetches for good
