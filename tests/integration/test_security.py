"""Secrets stay secret, forged callbacks resolve nothing, and a flood of them costs nothing."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
import tracemalloc

import aiohttp
import pytest

import mjasync
from mjasync.testing import FakeProxy
from tests.conftest import API_KEY, FAST, Reached
from tests.integration.conftest import client_for


@pytest.mark.stress
async def test_ten_thousand_forged_callbacks_resolve_nothing_and_keep_memory_flat() -> None:
    interval = 5.0
    async with FakeProxy("reference", job_seconds=0.2) as fake:
        async with client_for(fake, poll_interval=interval) as mj:
            local = await mj.callbacks.serve("127.0.0.1", 0)
            token = (mj.callbacks.hook_url or "").rsplit("/", 1)[1]
            task = await mj.imagine("STUCKJOB at 93 %")
            stuck = Reached(93)
            waiter = asyncio.ensure_future(task.wait(timeout=None, on_progress=stuck))
            await stuck.wait()
            forged = json.dumps({"id": task.id, "status": "SUCCESS", "progress": "100%", "imageUrl": "x"}).encode()
            fetches_before = fake.stats.requests["GET /mj/task/{id}/fetch"]
            connector = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(connector=connector) as session:

                async def flood(count: int, path: str) -> list[int]:
                    codes = []
                    for _ in range(count):
                        async with session.post(f"{local}/{path}", data=forged) as response:
                            codes.append(response.status)
                    return codes

                await asyncio.gather(*(flood(20, "guess") for _ in range(10)))  # warm up
                tracemalloc.start()
                before = tracemalloc.take_snapshot()
                started = time.monotonic()
                wrong = await asyncio.gather(*(flood(100, "guess") for _ in range(50)))
                right = await asyncio.gather(*(flood(100, token) for _ in range(50)))
                elapsed = time.monotonic() - started
                after = tracemalloc.take_snapshot()
                tracemalloc.stop()
            growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
            assert {code for codes in wrong for code in codes} == {401}
            assert {code for codes in right for code in codes} == {200}
            assert not waiter.done(), "no forged SUCCESS resolved the wait"
            assert growth < 2 * 1024 * 1024, f"memory grew by {growth} bytes"
            # At most one confirming fetch per poll interval, however long the flood took.
            confirms = fake.stats.requests["GET /mj/task/{id}/fetch"] - fetches_before
            allowed = 1 + int(elapsed / interval)
            assert confirms <= allowed, f"{confirms} confirming fetches in {elapsed:.1f} s for 5,000 forged SUCCESS"
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter


async def test_secrets_never_reach_reprs_messages_logs_or_traceback_locals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="mjasync")
    async with FakeProxy("relay", job_seconds=0.05) as fake:
        port = int(fake.url.rsplit(":", 1)[1])
    # The port is closed now: every request fails to connect.
    async with mjasync.Client(f"http://127.0.0.1:{port}", API_KEY, **{**FAST, "max_retries": 1}) as mj:
        mj.callbacks.configure("https://bot.example/hooks")
        token = (mj.callbacks.hook_url or "").rsplit("/", 1)[1]
        errors: list[BaseException] = []
        for call in (mj.imagine("cat"), mj.fetch("1")):
            try:
                await call
            except mjasync.MjError as exc:
                errors.append(exc)
        try:
            await mj.callbacks.deliver(b"{}", token[:-1] + ("y" if token.endswith("x") else "x"))
        except mjasync.InvalidCallbackError as exc:
            errors.append(exc)
        texts = [repr(mj), repr(mj.callbacks), repr(mj.task("1")), caplog.text]
        for error in errors:
            texts += [str(error), repr(error)]
            frames = traceback.TracebackException.from_exception(error, capture_locals=True).stack
            texts += [repr(frame.locals) for frame in frames if "/mjasync/" in frame.filename]
    assert len(errors) == 3
    for text in texts:
        assert API_KEY not in text
        assert token not in text


async def test_base_url_credentials_and_query_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mjasync")
    async with FakeProxy("reference", job_seconds=0.05, api_key=None) as fake:
        host = fake.url.removeprefix("http://")
        url = f"http://robot:hunter2-pass@{host}/?key=query-secret-123"
        async with mjasync.Client(url, "k", auth="mj-api-secret", **FAST) as mj:
            info = await (await mj.imagine("cat")).wait(timeout=10)
            assert info.succeeded
            logging.getLogger("mjasync").info("base url is %s", url)
            shown = repr(mj)
        assert fake.requests[0].path.endswith("?key=query-secret-123"), "the query follows the path"
    for text in (shown, caplog.text):
        assert "hunter2-pass" not in text and "query-secret-123" not in text
    with pytest.raises(mjasync.InvalidRequestError, match="credentials"):
        mjasync.Client(url, "k", auth="bearer")
