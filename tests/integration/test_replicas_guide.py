"""The replicas guide's FastAPI app, run as it says: `uvicorn app:app --workers 3`, against
FakeProxy (the extended dialect, which sends callbacks) and a real redis-server. The app polls
every 60 s, so every wait must end by a callback within the test, most of them passed over the
Redis bus by the worker the callback landed on to the worker that submitted the job."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio

import mjasync
from mjasync.testing import FakeProxy
from tests.conftest import SETTLE_TIMEOUT
from tests.redis_server import RedisServer, free_port

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "replicas.md"
PROGRAM = "# file: app.py\n"
NAMESPACE = "imagine-api"
"""The app's RedisStore namespace; its bus is the channel `<namespace>:bus`."""
WORKERS = 3
JOBS = 9
POLL_INTERVAL = 60.0
"""Far longer than the test: a wait that ends ended by a callback."""
DEADLINE = 3 * SETTLE_TIMEOUT
"""Seconds any one state may take: three Python processes importing FastAPI on a busy machine."""
RESULT = re.compile(r"^INFO (\d+) app: task (\d+) (\w+) ", re.M)
RESOLVED = re.compile(r"^INFO (\d+) app: (\d+) waits resolved by callback, (\d+) by polling$", re.M)


def app_program() -> str:
    """The guide's app block, as written."""
    blocks = re.findall(r"^```python\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), re.S | re.M)
    (program,) = [block for block in blocks if block.startswith(PROGRAM)]
    return str(program)


class Uvicorn:
    """`uvicorn app:app --workers 3` in its own directory, its output in one log file."""

    def __init__(self, directory: Path, env: dict[str, str], port: int) -> None:
        self.directory = directory
        self.env = env
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: asyncio.subprocess.Process | None = None
        (directory / "app.py").write_text(app_program(), encoding="utf-8")

    @property
    def log(self) -> str:
        path = self.directory / "uvicorn.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def start(self) -> None:
        with (self.directory / "uvicorn.log").open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "uvicorn", "app:app", "--workers", str(WORKERS),
                "--host", "127.0.0.1", "--port", str(self.port),
                cwd=self.directory, env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait for a state, failing early (with the log) if uvicorn died."""
        deadline = time.monotonic() + DEADLINE
        while not condition():
            assert self.process is not None and self.process.returncode is None, f"uvicorn died:\n{self.log[-6000:]}"
            assert time.monotonic() < deadline, f"not reached within {DEADLINE:g} s: {what}\n{self.log[-6000:]}"
            await asyncio.sleep(0.02)

    async def stop(self) -> int:
        """SIGTERM: uvicorn stops its workers (each runs the lifespan's shutdown) and exits."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), DEADLINE)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def request(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    """One request over a connection of its own (any worker may accept it); status and JSON."""
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
        session.request(method, url, **kwargs) as response,
    ):
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


async def count_bus(url: str, seen: list[bytes], subscribed: asyncio.Event) -> None:
    """Keep every message published on the app's bus (callbacks passed between workers)."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(f"{NAMESPACE}:bus")
            subscribed.set()
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                if message is not None and message["type"] == "message":
                    seen.append(message["data"])
    finally:
        await client.aclose()


@pytest.fixture
async def world(
    tmp_path: Path, make_redis_server: Callable[..., RedisServer]
) -> AsyncIterator[tuple[FakeProxy, RedisServer, Uvicorn, str]]:
    server = make_redis_server(persistent=True)  # as the guide says: appendonly yes
    token = secrets.token_urlsafe(32)
    async with FakeProxy("extended", job_seconds=1.5, seed=3) as fake:
        port = free_port()
        env = {
            **os.environ,
            "REDIS_URL": server.url, "PUBLIC_URL": f"http://127.0.0.1:{port}", "MJ_HOOK_TOKEN": token,
            "MJASYNC_BASE_URL": fake.url, "MJASYNC_API_KEY": fake.api_key or "", "MJASYNC_AUTH": fake.auth,
            "MJASYNC_POLL_INTERVAL": str(POLL_INTERVAL),
        }
        app = Uvicorn(tmp_path, env, port)
        try:
            yield fake, server, app, token
        finally:
            await app.kill()


async def test_three_workers_end_every_wait_by_callback_across_the_bus(
    world: tuple[FakeProxy, RedisServer, Uvicorn, str],
) -> None:
    fake, server, app, token = world
    bus: list[bytes] = []
    subscribed = asyncio.Event()
    listener = asyncio.create_task(count_bus(server.url, bus, subscribed))
    try:
        await asyncio.wait_for(subscribed.wait(), DEADLINE)
        await app.start()
        await app.until(lambda: app.log.count("Application startup complete.") == WORKERS, "workers started")

        started = time.monotonic()
        answers = await asyncio.gather(*(
            request("POST", f"{app.url}/imagine", json={"prompt": f"a lighthouse, take {n}"},
                    headers={"Idempotency-Key": f"req-{n}"} if n else {})
            for n in range(JOBS)
        ))
        assert all(status == 202 for status, _ in answers), answers
        ids = [body["id"] for _, body in answers]
        assert len(set(ids)) == JOBS, ids
        # A client retrying request 1 (its answer lost, say) gets the same job, on any worker.
        assert await request("POST", f"{app.url}/imagine", json={"prompt": "a lighthouse, take 1"},
                             headers={"Idempotency-Key": "req-1"}) == (202, {"id": ids[1]})

        def results() -> dict[str, list[tuple[int, str]]]:
            """Task id -> (worker pid, status) of each wait the workers logged as ended."""
            ended: dict[str, list[tuple[int, str]]] = {}
            for pid, task_id, status in RESULT.findall(app.log):
                ended.setdefault(task_id, []).append((int(pid), status))
            return ended

        await app.until(lambda: len(results()) == JOBS, f"the {JOBS} waits ended")
        elapsed = time.monotonic() - started
        ended = results()

        for task_id in ids:
            status, body = await request("GET", f"{app.url}/jobs/{task_id}")
            assert status == 200 and body["status"] == "SUCCESS" and body["image_url"], body
        assert (await request("GET", f"{app.url}/jobs/424242"))[0] == 404
        assert (await request("POST", f"{app.url}/mj-hooks/not-the-token", data=b"{}"))[0] == 400
        assert await app.stop() == 0, app.log[-6000:]
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)

    log = app.log
    # Each job was waited for once, by one worker, and ended in SUCCESS.
    assert sorted(ended) == sorted(ids)
    assert all(len(waits) == 1 and waits[0][1] == "SUCCESS" for waits in ended.values()), ended
    waiters = Counter(waits[0][0] for waits in ended.values())
    # Every wait ended by a callback (confirmed by one fetch), none by polling.
    resolved = [(int(pid), int(by_callback), int(by_poll)) for pid, by_callback, by_poll in RESOLVED.findall(log)]
    assert len(resolved) == WORKERS, log[-6000:]
    assert sum(by_callback for _, by_callback, _ in resolved) == JOBS, resolved
    assert sum(by_poll for _, _, by_poll in resolved) == 0, resolved
    assert {pid for pid, by_callback, _ in resolved if by_callback} == set(waiters)
    # Callbacks crossed the bus between workers (the kernel spreads the connections; how many
    # workers waited is its choice, so it is printed, not asserted).
    print(f"\nreplicas guide: jobs waited for by workers {dict(waiters)}, {len(bus)} callbacks over the bus")
    assert bus, "no callback crossed the bus"
    # Nothing paid twice; the shared token never reached a log.
    assert len(fake.jobs) == JOBS
    assert max(fake.stats.submits_by_state.values()) == 1
    assert token not in log
    assert "/mj-hooks/***" in log
    # Every record was marked handled: nothing is left for a resume().
    store = mjasync.RedisStore(server.url, namespace=NAMESPACE)
    try:
        assert await store.claim("checker") == []
    finally:
        await store.close()
    print(f"\n{JOBS} jobs, {len(waiters)} of {WORKERS} workers waited ({dict(waiters)}), "
          f"{sum(r[1] for r in resolved)} resolved by callback, {sum(r[2] for r in resolved)} by polling, "
          f"{len(bus)} callbacks crossed the bus, {fake.stats.callbacks_sent} sent, all ended in {elapsed:.1f} s")
