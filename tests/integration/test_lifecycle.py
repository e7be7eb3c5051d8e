"""Cancelling, closing and misuse: every coroutine ends promptly with a result or a typed error."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from aiohttp import web

import mjasync
from mjasync.testing import FakeProxy
from tests.integration.conftest import client_for


def no_other_tasks() -> bool:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_cancelling_hundreds_of_waits_mid_flight() -> None:
    async with FakeProxy("reference", job_seconds=30) as fake:
        async with client_for(fake, poll_interval=0.02) as mj:
            tasks = await asyncio.gather(*(mj.imagine(f"p{i}") for i in range(300)))
            waiters = [asyncio.ensure_future(t.wait()) for t in tasks]
            await asyncio.sleep(0.1)
            assert len(mj._poller) == 300
            for waiter in waiters[::2]:
                waiter.cancel()
            results = await asyncio.gather(*waiters[::2], return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in results)
            assert len(mj._poller) == 150
            for waiter in waiters[1::2]:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
            assert len(mj._poller) == 0
        assert fake.stats.requests["POST /mj/task/{id}/cancel"] == 0, "no job was cancelled"
    assert no_other_tasks()


async def test_closing_the_client_mid_flight_ends_everything_with_typed_errors() -> None:
    async with FakeProxy("reference", job_seconds=5, seed=2) as fake:
        fake.faults.add("slow", endpoint="submit", rate=0.3, delay=0.3)
        mj = client_for(fake, poll_interval=0.02)
        await mj.callbacks.serve("127.0.0.1", 0)
        submitted = await asyncio.gather(*(mj.imagine(f"early {i}") for i in range(20)))
        waits = [asyncio.ensure_future(t.wait(timeout=30)) for t in submitted]
        submits = [asyncio.ensure_future(mj.imagine(f"late {i}")) for i in range(20)]
        await asyncio.sleep(0.1)
        await mj.close()
        outcomes = await asyncio.wait_for(asyncio.gather(*waits, *submits, return_exceptions=True), 10)
    for outcome in outcomes:
        assert isinstance(outcome, mjasync.Task | mjasync.MjError), repr(outcome)
    assert any(isinstance(o, mjasync.ClientClosedError) for o in outcomes[:20])
    assert no_other_tasks()
    with pytest.raises(mjasync.ClientClosedError):
        await mj.imagine("after close")
    with pytest.raises(mjasync.ClientClosedError):
        await mj.task("1").wait()


async def test_closed_client_with_users_session_leaves_it_open() -> None:
    import aiohttp

    async with FakeProxy("relay", job_seconds=0.05) as fake, aiohttp.ClientSession() as session:
        mj = client_for(fake, session=session)
        await mj.imagine("cat")
        await mj.close()
        assert not session.closed
        with pytest.raises(mjasync.ClientClosedError):
            await mj.fetch("1")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def test_tls_is_verified_by_default_with_an_explicit_opt_out(certificate: tuple[Path, Path]) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)

    async def fetch(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["id"], "status": "SUCCESS"})

    app = web.Application()
    app.router.add_get("/mj/task/{id}/fetch", fetch)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with mjasync.Client(url, "k", max_retries=0) as mj:
            with pytest.raises(mjasync.APIConnectionError) as caught:
                await mj.fetch("1")
            assert caught.value.request_sent is False
        async with mjasync.Client(url, "k", verify_tls=False) as mj:
            assert (await mj.fetch("1")).succeeded
    finally:
        await runner.cleanup()
