"""The SDK's own callback receiver under a slowloris, and after close (issue 11, item 11)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import pytest

import mjasync
from tests.conftest import API_KEY, FAST, SETTLE_TIMEOUT, eventually

SOCKETS = 300
PARTIAL = b"POST /mj-hooks/abc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@pytest.fixture
async def mj() -> AsyncIterator[mjasync.Client]:
    async with mjasync.Client("http://127.0.0.1:9", API_KEY, **FAST) as client:
        yield client


async def closed_by_server(reader: asyncio.StreamReader) -> None:
    """Return once the server has closed (or reset) the connection."""
    try:
        while await reader.read(4096):
            pass
    except ConnectionError:
        pass


class Slowloris:
    """Raw sockets that each sent part of a request's headers and then nothing more."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.writers: list[asyncio.StreamWriter] = []
        self.closed: list[asyncio.Task[None]] = []

    async def open(self, count: int) -> None:
        for _ in range(count):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except ConnectionError:
                continue  # refused outright: not held
            writer.write(PARTIAL)
            self.writers.append(writer)
            self.closed.append(asyncio.create_task(closed_by_server(reader)))

    @property
    def held(self) -> int:
        """Sockets the server has not closed yet."""
        return sum(not task.done() for task in self.closed)

    async def close(self) -> None:
        for writer in self.writers:
            writer.close()
        for task in self.closed:
            task.cancel()
        await asyncio.gather(*self.closed, return_exceptions=True)


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


async def answers(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.post(url + "/wrong-token", data=b"{}") as response:
        return response.status


async def test_serve_after_close_is_refused() -> None:
    mj = mjasync.Client("http://127.0.0.1:9", API_KEY, **FAST)
    await mj.close()
    with pytest.raises(mjasync.ClientClosedError):
        await mj.callbacks.serve("127.0.0.1", 0)


async def test_a_slowloris_is_cut_off_at_the_header_timeout(mj: mjasync.Client) -> None:
    header_timeout = 0.5
    url = await mj.callbacks.serve("127.0.0.1", 0, header_timeout=header_timeout)
    attack = Slowloris(port_of(url))
    try:
        await attack.open(SOCKETS)
        # Each socket is closed about header_timeout after it connected; the bound is generous,
        # far below aiohttp's own keep-alive timeout (75 s) that used to be the only limit.
        await asyncio.wait_for(asyncio.gather(*attack.closed), SETTLE_TIMEOUT)
        assert attack.held == 0
        assert await answers(url) == 401  # the receiver still serves
    finally:
        await attack.close()


async def test_a_slowloris_holds_no_more_sockets_than_the_cap(mj: mjasync.Client) -> None:
    cap = 50
    url = await mj.callbacks.serve("127.0.0.1", 0, header_timeout=10 * SETTLE_TIMEOUT, max_connections=cap)
    attack = Slowloris(port_of(url))
    try:
        await attack.open(SOCKETS)
        await eventually(lambda: attack.held <= cap)  # the ones past the cap were closed at once
    finally:
        await attack.close()
    # Once the attack lets go, the receiver takes connections again.
    statuses: list[int] = []

    async def retry() -> None:
        while True:
            try:
                statuses.append(await answers(url))
                return
            except aiohttp.ClientError:
                await asyncio.sleep(0.01)

    await asyncio.wait_for(retry(), SETTLE_TIMEOUT)
    assert statuses == [401]
