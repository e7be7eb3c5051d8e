"""Secrets stay out of tracebacks with locals and out of error messages a server echoes them into."""

from __future__ import annotations

import socket
import traceback
from typing import Any

import pytest
from aiohttp import web

import mjasync
from tests.conftest import API_KEY, FAST
from tests.hostile._origins import Origin

PASSWORD = "url-password-SECRET-42"
HOOK_TOKEN = "hook-token-SECRET-0123456789abcdef"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def with_locals(exc: BaseException) -> str:
    return "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())


@pytest.mark.parametrize("auth", ["bearer", "authorization", "mj-api-secret"])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_connection_failure_traceback_with_locals_shows_no_key(auth: Any, method: str) -> None:
    mj = mjasync.Client(f"http://127.0.0.1:{closed_port()}", API_KEY, auth=auth, **{**FAST, "max_retries": 0})
    mj.callbacks.configure("http://127.0.0.1:9/mj-hooks", token=HOOK_TOKEN)
    async with mj:
        with pytest.raises(mjasync.APIConnectionError) as caught:
            await (mj.fetch("1234") if method == "GET" else mj.imagine("a cat"))
    text = with_locals(caught.value)
    assert "aiohttp" in text, "the traceback reaches into aiohttp's frames"
    assert API_KEY not in text
    assert HOOK_TOKEN not in text


async def test_a_connection_failure_traceback_with_locals_shows_no_base_url_password() -> None:
    # No local of this frame holds the URL: the traceback shows this frame's locals too.
    async with mjasync.Client(
        f"http://user:{PASSWORD}@127.0.0.1:{closed_port()}", auth="mj-api-secret", **{**FAST, "max_retries": 0}
    ) as mj:
        with pytest.raises(mjasync.APIConnectionError) as caught:
            await mj.fetch("1234")
    text = with_locals(caught.value)
    assert "aiohttp" in text
    assert PASSWORD not in text


def fill(value: Any, text: str) -> Any:
    if isinstance(value, str):
        return value.format(echo=text)
    if isinstance(value, dict):
        return {key: fill(item, text) for key, item in value.items()}
    return value


def echo(status: int, answer: dict[str, Any]) -> Any:
    async def reply(origin: Origin, request: web.Request) -> web.StreamResponse:
        text = f"{request.headers.get('Authorization', '')} {(await request.read()).decode()}"
        return web.json_response(fill(answer, text), status=status)

    return reply


ECHOES: dict[str, tuple[int, dict[str, Any]]] = {
    "result code": (200, {"code": 4, "description": "refused: {echo}", "properties": {"seen": "{echo}"}}),
    "queue full": (200, {"code": 23, "description": "队列已满 {echo}"}),
    "extended envelope": (200, {"success": False, "code": 500, "message": "refused: {echo}"}),
    "gateway 401": (401, {"error": {"message": "bad key {echo}"}}),
    "spring 400": (400, {"message": "bad request {echo}"}),
    "plain 403": (403, {"description": "forbidden {echo}"}),
}


@pytest.mark.parametrize("case", list(ECHOES))
async def test_a_server_echoing_the_key_and_hook_puts_neither_into_the_error(case: str) -> None:
    status, answer = ECHOES[case]
    async with Origin(echo(status, answer)) as server:
        mj = mjasync.Client(server.url, API_KEY, **{**FAST, "max_retries": 0})
        mj.callbacks.configure("http://127.0.0.1:9/mj-hooks", token=HOOK_TOKEN)
        async with mj:
            with pytest.raises(mjasync.MjError) as caught:
                await mj.imagine("a cat")
    shown = [str(caught.value), repr(caught.value)]
    # The extended server's 5xx envelope leaves the outcome unknown: the submit is reconciled.
    exc = caught.value.cause if isinstance(caught.value, mjasync.SubmitUncertainError) else caught.value
    assert isinstance(exc, mjasync.APIError)
    shown += [str(exc), repr(exc), repr(exc.args), exc.message, exc.body or ""]
    if isinstance(exc, mjasync.ProxyResultError):
        shown += [exc.description, repr(dict(exc.properties))]
    assert any("***" in text for text in shown), "the echo arrived, scrubbed"
    for text in shown:
        assert API_KEY not in text
        assert HOOK_TOKEN not in text
