"""Forged but authenticated callbacks cannot end a wait or hold back the real result (issue 11, item 10).

A tiny server answers fetch and list-by-condition for the tasks it holds; the test changes their
status and delivers callbacks itself through `callbacks.deliver`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

import mjasync
from tests.conftest import FAST, SETTLE_TIMEOUT, eventually

API_KEY = "sk-hostile-test"


def task_json(task_id: str, status: str, progress: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": task_id, "action": "IMAGINE", "status": status, "progress": progress, "prompt": "fox",
        "submitTime": 1, "startTime": 2, "finishTime": 3 if status in ("SUCCESS", "FAILURE") else None,
        "imageUrl": extra.pop("imageUrl", None), "failReason": None, "buttons": [], **extra,
    }


class Tasks:
    """Serves the tasks in `tasks` and counts the reads of each kind."""

    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.seen: Counter[str] = Counter()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def fetch(self, request: web.Request) -> web.Response:
        self.seen["fetch"] += 1
        task = self.tasks.get(request.match_info["id"])
        return web.json_response(task) if task else web.Response(status=200, text="")

    async def list_by_condition(self, request: web.Request) -> web.Response:
        self.seen["list"] += 1
        ids = (await request.json())["ids"]
        return web.json_response([self.tasks[i] for i in ids if i in self.tasks])

    async def __aenter__(self) -> Tasks:
        app = web.Application()
        app.router.add_get("/mj/task/{id}/fetch", self.fetch)
        app.router.add_post("/mj/task/list-by-condition", self.list_by_condition)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[Tasks]:
    async with Tasks() as tasks:
        tasks.tasks["1"] = task_json("1", "IN_PROGRESS", "50%")
        yield tasks


def configured(server: Tasks, **options: Any) -> tuple[mjasync.Client, str]:
    mj = mjasync.Client(server.url, API_KEY, **{**FAST, **options})
    mj.callbacks.configure("https://hooks.example/mj")
    token = (mj.callbacks.hook_url or "").rsplit("/", 1)[1]
    return mj, token


def body(**fields: Any) -> bytes:
    return json.dumps(task_json("1", **fields)).encode()


async def test_a_forged_success_does_not_hold_back_the_real_one(server: Tasks) -> None:
    interval = 2.0  # the old code answered ~3 intervals after the real callback, the fix within 1
    mj, token = configured(server, poll_interval=interval)
    async with mj:
        waiting = asyncio.create_task(mj.task("1").wait())
        await eventually(lambda: server.seen["list"] >= 1)
        await mj.callbacks.deliver(body(status="SUCCESS", progress="100%", imageUrl="https://evil.example/x.png"), token)
        await eventually(lambda: server.seen["fetch"] >= 1)  # the confirming fetch said IN_PROGRESS
        assert not waiting.done()
        real = task_json("1", "SUCCESS", "100%", imageUrl="https://cdn.example/real.png")
        server.tasks["1"] = real
        started = time.monotonic()
        await mj.callbacks.deliver(json.dumps(real).encode(), token)
        info = await asyncio.wait_for(waiting, SETTLE_TIMEOUT)
        elapsed = time.monotonic() - started
    assert info.image_url == "https://cdn.example/real.png"
    assert elapsed < 2 * interval


async def test_a_forged_success_flood_still_costs_one_fetch_per_interval(server: Tasks) -> None:
    interval = 2.0
    mj, token = configured(server, poll_interval=interval)
    async with mj:
        waiting = asyncio.create_task(mj.task("1").wait(timeout=0.5 * interval))
        await eventually(lambda: server.seen["list"] >= 1)
        for _ in range(200):
            await mj.callbacks.deliver(body(status="SUCCESS", progress="100%"), token)
        with pytest.raises(mjasync.WaitTimeoutError):
            await waiting
    assert server.seen["fetch"] <= 2


async def test_a_forged_modal_does_not_end_a_fresh_wait(server: Tasks) -> None:
    server.tasks["1"] = task_json("1", "NOT_START", "0%")
    mj, token = configured(server, poll_interval=0.05)
    async with mj:
        waiting = asyncio.create_task(mj.task("1").wait())
        await eventually(lambda: server.seen["list"] >= 1)
        await mj.callbacks.deliver(body(status="MODAL", progress="0%"), token)
        await eventually(lambda: server.seen["fetch"] >= 1 or waiting.done())
        server.tasks["1"] = task_json("1", "SUCCESS", "100%", imageUrl="https://cdn.example/real.png")
        info = await asyncio.wait_for(waiting, SETTLE_TIMEOUT)
    assert info.succeeded


async def test_a_confirmed_modal_still_asks_for_input(server: Tasks) -> None:
    server.tasks["1"] = task_json("1", "NOT_START", "0%")
    mj, token = configured(server, poll_interval=30.0)
    async with mj:
        waiting = asyncio.create_task(mj.task("1").wait())
        await eventually(lambda: server.seen["list"] >= 1)
        server.tasks["1"] = task_json("1", "MODAL", "0%")
        await mj.callbacks.deliver(body(status="MODAL", progress="0%"), token)
        with pytest.raises(mjasync.ActionRequiredError):
            await asyncio.wait_for(waiting, SETTLE_TIMEOUT)


@pytest.mark.parametrize("token", ["\ud800" * 30, "é" * 30, "a\udc80" + "b" * 30])
async def test_an_undecodable_token_is_an_invalid_callback(server: Tasks, token: str) -> None:
    mj, _ = configured(server)
    async with mj:
        with pytest.raises(mjasync.InvalidCallbackError):
            await mj.callbacks.deliver(body(status="SUCCESS", progress="100%"), token)
