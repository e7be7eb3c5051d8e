"""Shared fixtures: an aioresponses that works on aiohttp >= 3.14, and fast client settings."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses

import mjasync
import mjasync.cli
from tests.redis_server import RedisServer

BASE_URL = "http://proxy.test"
API_KEY = "sk-test-SECRET-key-123"

# Millisecond settings: no test waits for a real backoff or poll interval.
FAST: dict[str, Any] = {
    "timeout": 5.0,
    "connect_timeout": 1.0,
    "retry_backoff": 0.001,
    "poll_interval": 0.01,
    "reconcile_delays": (0.01, 0.02),
    "missing_after": 0.2,
}


SETTLE_TIMEOUT = 30.0
"""Seconds `eventually` waits: far past any normal wait, so only a real hang fails a test."""


async def eventually(condition: Callable[[], bool], timeout: float = SETTLE_TIMEOUT) -> None:
    """Wait until `condition()` holds (background work: jobs, callbacks, polls), or fail.

    Tests wait for the state they need instead of sleeping a guessed time a busy machine breaks.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"condition not reached within {timeout:g} s"
        await asyncio.sleep(0.005)


class Reached:
    """An `on_progress` callback that records when a task reached `progress` percent."""

    def __init__(self, progress: int) -> None:
        self.progress = progress
        self.event = asyncio.Event()

    def __call__(self, info: mjasync.TaskInfo) -> None:
        if info.progress == self.progress:
            self.event.set()

    async def wait(self) -> None:
        await asyncio.wait_for(self.event.wait(), SETTLE_TIMEOUT)


def default_client_options(monkeypatch: pytest.MonkeyPatch, **defaults: Any) -> None:
    """Make every Client that code under test builds by name (the docs' examples, the CLI) start
    from `defaults`: `mjasync.Client` becomes a subclass that fills in what its caller left out."""

    class Defaulted(mjasync.Client):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**defaults, **kwargs})

    monkeypatch.setattr(mjasync, "Client", Defaulted)
    monkeypatch.setattr(mjasync.cli, "Client", Defaulted)


class _StreamWriter:
    output_size = 0


class _ShimResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds ClientResponse without the `stream_writer` aiohttp 3.14 requires."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _StreamWriter())
        super().__init__(*args, **kwargs)


def callback_result(**kwargs: Any) -> CallbackResult:
    """A CallbackResult built with the shim response class."""
    return CallbackResult(response_class=_ShimResponse, **kwargs)


class MockedHTTP(aioresponses):
    """aioresponses with the aiohttp 3.14 shim; remove the shim once a fixed release ships."""

    def add(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("response_class", _ShimResponse)
        super().add(*args, **kwargs)

    def calls(self, method: str, path: str) -> list[Any]:
        """The recorded calls to BASE_URL + path."""
        from yarl import URL

        return list(self.requests.get((method, URL(BASE_URL + path)), []))


@pytest.fixture
def http() -> Iterator[MockedHTTP]:
    mocked = MockedHTTP()
    with mocked:
        yield mocked


@pytest.fixture
async def client() -> AsyncIterator[mjasync.Client]:
    async with mjasync.Client(BASE_URL, API_KEY, **FAST) as mj:
        yield mj


# -- a real redis-server (tests/redis_server.py): skipped without one, failed under CI ----------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One server for the session, without persistence; tests keep apart by `redis_namespace`."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_namespace() -> str:
    """A namespace of this test's own: no other test sees its keys."""
    return f"test-{secrets.token_hex(6)}"


@pytest.fixture
def make_redis_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Starts servers of this test's own (`persistent=True`: append-only file); all stopped after."""
    servers: list[RedisServer] = []

    def make(*, persistent: bool = False) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", persistent=persistent)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.stop()
