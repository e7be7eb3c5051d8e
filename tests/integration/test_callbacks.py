"""notifyHook callbacks racing the poller, against FakeProxy over loopback."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import mjasync
from mjasync.testing import FakeProxy
from tests.conftest import SETTLE_TIMEOUT, Reached, eventually
from tests.integration.conftest import client_for


@pytest.fixture
async def fake() -> AsyncIterator[FakeProxy]:
    async with FakeProxy("reference", job_seconds=0.3, seed=11) as proxy:
        yield proxy


async def post(url: str, body: bytes, *, chunked: bool = False) -> int:
    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    data: Any = stream() if chunked else io.BytesIO(body)
    async with aiohttp.ClientSession() as session, session.post(url, data=data) as response:
        return response.status


async def test_success_callback_resolves_wait_at_once_not_at_the_next_poll(fake: FakeProxy) -> None:
    arrivals: dict[str, float] = {}
    interval = 30.0
    async with client_for(fake, poll_interval=interval) as mj:
        handler = mj.callbacks.aiohttp_handler()

        async def timed(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            if json.loads(body).get("status") == "SUCCESS":
                arrivals.setdefault(json.loads(body)["id"], time.perf_counter())
            return await handler(request)

        app = web.Application()
        app.router.add_post("/hooks/{token}", timed)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            mj.callbacks.configure(f"http://127.0.0.1:{port}/hooks")
            task = await mj.imagine("a red fox")
            info = await task.wait(timeout=10)
            returned = time.perf_counter()
        finally:
            await runner.cleanup()
        assert info.succeeded
        # The latency figure itself is a benchmark's job; here the margin is the poll interval.
        assert returned - arrivals[task.id] < interval / 2
        assert mj.stats.resolved_by_callback == 1 and mj.stats.resolved_by_poll == 0
        assert mj._poller.ticks == 1, "no second poll tick was needed"


async def test_submits_carry_the_hook_unless_the_caller_passes_one(fake: FakeProxy) -> None:
    async with client_for(fake) as mj:
        local = await mj.callbacks.serve("127.0.0.1", 0)
        await mj.imagine("one")
        await mj.imagine("two", notify_hook="https://mine.example/hook")
        hooks = [(r.json or {})["notifyHook"] for r in fake.requests if r.route == "POST /mj/submit/imagine"]
        assert hooks == [mj.callbacks.hook_url, "https://mine.example/hook"]
        assert mj.callbacks.hook_url is not None and mj.callbacks.hook_url.startswith(local + "/")
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(local + "/x", b"{}")  # close() stopped the receiver


async def test_rejected_deliveries_change_no_waiter(fake: FakeProxy) -> None:
    async with client_for(fake, poll_interval=5.0) as mj:
        local = await mj.callbacks.serve("127.0.0.1", 0, public_url="http://bot.example/mj-hooks")
        assert local.endswith("/mj-hooks")
        task = await mj.imagine("STUCKJOB forever")
        stuck = Reached(93)
        waiter = asyncio.ensure_future(task.wait(timeout=None, on_progress=stuck))
        await stuck.wait()
        token = (mj.callbacks.hook_url or "").rsplit("/", 1)[1]
        forged = json.dumps({"id": task.id, "status": "SUCCESS", "progress": "100%", "imageUrl": "x"}).encode()
        assert await post(f"{local}/wrong-token", forged) == 401
        huge = b"{" + b" " * (2 * 1024 * 1024) + b"}"
        assert await post(f"{local}/{token}", huge) == 413
        assert await post(f"{local}/{token}", huge, chunked=True) == 413
        assert await post(f"{local}/{token}", b"not json") == 400
        assert await post(f"{local}/{token}", b'{"no": "id"}') == 400
        assert await post(f"{local}/{token}", forged) == 200  # accepted as a hint...
        await asyncio.sleep(0.2)
        assert not waiter.done(), "...but a forged SUCCESS never resolves a running job"
        assert task.last is not None and task.last.progress == 93
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter


async def test_deliver_for_other_frameworks(fake: FakeProxy, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mjasync")
    async with client_for(fake, poll_interval=5.0) as mj:
        mj.callbacks.configure("https://bot.example/mj-hooks")
        hook = mj.callbacks.hook_url or ""
        token = hook.rsplit("/", 1)[1]
        with pytest.raises(mjasync.InvalidCallbackError) as caught:
            await mj.callbacks.deliver(b"{}", "guess")
        assert "guess" not in str(caught.value)
        with pytest.raises(mjasync.InvalidCallbackError):
            await mj.callbacks.deliver(b"[1, 2]", token)
        with pytest.raises(mjasync.InvalidCallbackError):
            await mj.callbacks.deliver(b"x" * (mj.callbacks.max_body + 1), token)
        await mj.callbacks.deliver(json.dumps({"id": "999", "status": "SUCCESS"}).encode(), token)  # unknown: ignored
        task = await mj.imagine("a lighthouse")
        waiter = asyncio.ensure_future(task.wait(timeout=None))
        await asyncio.sleep(0)
        snapshot = {"id": task.id, "status": "IN_PROGRESS", "progress": "46%"}
        await mj.callbacks.deliver(json.dumps(snapshot).encode(), token)
        await asyncio.sleep(0)
        assert task.last is not None and task.last.progress == 46, "a callback wakes the waiter at once"
        await eventually(lambda: fake.jobs[task.id].status == "SUCCESS")
        await mj.callbacks.deliver(json.dumps({**snapshot, "status": "SUCCESS", "progress": "100%"}).encode(), token)
        info = await asyncio.wait_for(waiter, SETTLE_TIMEOUT)
        assert info.succeeded
        texts = [repr(mj.callbacks), repr(mj), caplog.text, str(caught.value)]
    assert all(token not in text for text in texts)


async def test_stale_callbacks_never_overwrite_newer_snapshots(fake: FakeProxy) -> None:
    async with client_for(fake, poll_interval=5.0) as mj:
        mj.callbacks.configure("https://bot.example/h")
        token = (mj.callbacks.hook_url or "").rsplit("/", 1)[1]
        task = await mj.imagine("STUCKJOB")
        seen: list[tuple[str, int | None]] = []
        waiter = asyncio.ensure_future(task.wait(timeout=None, on_progress=lambda i: seen.append((i.status.value, i.progress))))
        await asyncio.sleep(0)
        for status, progress in (("IN_PROGRESS", "62%"), ("IN_PROGRESS", "31%"), ("SUBMITTED", "0%"), ("IN_PROGRESS", "62%")):
            body = json.dumps({"id": task.id, "status": status, "progress": progress}).encode()
            await mj.callbacks.deliver(body, token)
        await asyncio.sleep(0)
        assert seen[-1] == ("IN_PROGRESS", 62)
        assert ("IN_PROGRESS", 31) not in seen and seen.count(("IN_PROGRESS", 62)) == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter


async def test_lossy_duplicated_reordered_callbacks_resolve_every_job_once() -> None:
    async with FakeProxy("reference", job_seconds=0.3, seed=5) as fake:
        fake.faults.callback_drop_rate = 0.5
        fake.faults.callback_duplicate_rate = 0.1
        fake.faults.callback_reorder = True
        # Polls fail until every job has ended, so what resolves first is up to the callbacks alone;
        # the jobs whose last callback was lost then come back by the polls that follow.
        fake.faults.add("http_503", endpoint="list")
        async with client_for(fake, poll_interval=0.05, max_retries=0) as mj:
            await mj.callbacks.serve("127.0.0.1", 0)
            progress: dict[str, list[Any]] = {}

            async def submit_and_wait(prompt: str) -> tuple[mjasync.Task, mjasync.TaskInfo]:
                task = await mj.imagine(prompt)
                steps = progress[task.id] = []
                return task, await task.wait(timeout=60, on_progress=lambda i: steps.append(i.status))

            waits = asyncio.gather(*(submit_and_wait(f"job {i}") for i in range(200)))
            await eventually(lambda: len(fake.jobs) == 200 and all(j.status == "SUCCESS" for j in fake.jobs.values()))
            await eventually(lambda: mj.stats.resolved_by_callback > 0)
            fake.faults.active.clear()
            done = await waits
            stats = mj.stats
    assert len(done) == 200
    for task, result in done:
        assert result.id == task.id and result.succeeded and result.progress == 100 and result.image_url
        final = fake.jobs[task.id].task_json()
        assert (result.image_url, result.progress_text) == (final["imageUrl"], final["progress"])
        assert progress[task.id].count(mjasync.TaskStatus.SUCCESS) == 1, "resolved exactly once"
    assert stats.resolved_by_callback + stats.resolved_by_poll == 200
    assert stats.resolved_by_callback > 0 and stats.resolved_by_poll > 0 and fake.stats.callbacks_dropped > 0
