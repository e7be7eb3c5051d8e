"""`redact_logs()`: the web servers' access logs never show the callback token."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import uvicorn
import uvicorn.logging
from aiohttp import web

import mjasync
from tests.conftest import eventually

HOOK_TOKEN = "hook-token-SECRET-0123456789abcdef"
CALLBACK = json.dumps({"id": "1234", "status": "IN_PROGRESS", "progress": "50%"}).encode()


async def post_callback(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, data=CALLBACK) as response:
        return response.status


def test_redact_logs_is_idempotent_and_returns_its_filter() -> None:
    first = mjasync.redact_logs("aiohttp.access", "uvicorn.access")
    again = mjasync.redact_logs("aiohttp.access", "uvicorn.access")
    assert isinstance(first, logging.Filter)
    assert again is first
    for name in ("aiohttp.access", "uvicorn.access"):
        assert logging.getLogger(name).filters.count(first) == 1


async def test_the_aiohttp_recipe_access_log_shows_the_request_line_without_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mjasync.redact_logs("aiohttp.access", "uvicorn.access")
    async with mjasync.Client("http://127.0.0.1:9") as mj:
        mj.callbacks.configure("https://bot.example.com/mj-hooks", token=HOOK_TOKEN)
        app = web.Application()
        app.router.add_post("/mj-hooks/{token}", mj.callbacks.aiohttp_handler())
        runner = web.AppRunner(app)  # the recipe's runner: aiohttp's default access log
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        try:
            with caplog.at_level(logging.INFO, logger="aiohttp.access"):
                assert await post_callback(f"http://{host}:{port}/mj-hooks/{HOOK_TOKEN}") == 200
                await eventually(lambda: "POST /mj-hooks/" in caplog.text)
        finally:
            await runner.cleanup()
    assert "POST /mj-hooks/*** HTTP/1.1" in caplog.text
    assert HOOK_TOKEN not in caplog.text
    for record in caplog.records:
        assert HOOK_TOKEN not in repr(record.args)
        assert all(HOOK_TOKEN not in str(value) for value in vars(record).values())


def asgi_app(mj: mjasync.Client) -> Callable[..., Awaitable[None]]:
    """The FastAPI recipe without FastAPI: an ASGI route `/mj-hooks/{token}` calling deliver()."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        token = scope["path"].rsplit("/", 1)[-1]
        try:
            await mj.callbacks.deliver(body, token)
            status = 200
        except mjasync.InvalidCallbackError:
            status = 400
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


async def test_a_uvicorn_access_log_shows_the_request_line_without_the_token() -> None:
    mjasync.redact_logs("aiohttp.access", "uvicorn.access")
    async with mjasync.Client("http://127.0.0.1:9") as mj:
        mj.callbacks.configure("https://bot.example.com/mj-hooks", token=HOOK_TOKEN)
        # uvicorn's own logging config, with its access formatter (which unpacks the record's args).
        config = uvicorn.Config(asgi_app(mj), host="127.0.0.1", port=0, lifespan="off", ws="none")
        output = io.StringIO()
        handler = logging.StreamHandler(output)
        handler.setFormatter(uvicorn.logging.AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
        access = logging.getLogger("uvicorn.access")
        access.addHandler(handler)
        server = uvicorn.Server(config)
        serving = asyncio.ensure_future(server.serve())
        try:
            await eventually(lambda: server.started or serving.done())
            port = server.servers[0].sockets[0].getsockname()[1]
            assert await post_callback(f"http://127.0.0.1:{port}/mj-hooks/{HOOK_TOKEN}") == 200
            await eventually(lambda: "POST /mj-hooks/" in output.getvalue())
        finally:
            server.should_exit = True
            await serving
            access.removeHandler(handler)
    text = output.getvalue()
    assert '"POST /mj-hooks/*** HTTP/1.1" 200' in text
    assert HOOK_TOKEN not in text
