"""The simulator's answer bodies: the proxy envelope and the error shapes the server families use."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from ._jobs import now_ms

__all__ = [
    "Answer",
    "envelope",
    "gateway_error",
    "html_page",
    "json_answer",
    "result_failure",
    "spring_error",
    "upstream_error",
]

_dumps: Final = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


class Answer(Exception):
    """Raised by a handler to answer at once (a rejection)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_answer(data: Any, status: int = 200) -> web.Response:
    """`data` as compact UTF-8 JSON, as the servers write it."""
    return web.json_response(data, status=status, dumps=_dumps)


def envelope(
    code: int, text: str, result: Any = None, properties: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The proxy envelope ``{code, description, result, properties}`` every submit answers with."""
    return {"code": code, "description": text, "result": result, "properties": properties or {}}


def html_page(status: int, title: str) -> web.Response:
    """An nginx-style HTML page, what a gateway in front of the proxy answers."""
    page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1><hr>nginx</body></html>"
    return web.Response(status=status, text=page, content_type="text/html")


def upstream_error(text: str, status: int = 400) -> web.Response:
    """A relay's answer to any refused Midjourney request: the envelope dropped, code always 4,
    the text with the trailing space new-api's error wrapper adds."""
    return json_answer({"description": f"{text} ", "type": "upstream_error", "code": 4}, status)


def spring_error(status: int, error: str, path: str) -> web.Response:
    """Spring Boot's default error body (the reference server on a body it cannot bind): no `code`."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime())
    return json_answer({"timestamp": stamp, "status": status, "error": error, "path": path}, status)


def gateway_error(message: str, status: int) -> web.Response:
    """A relay gateway's own ``{"error": {...}}`` body (bad key, rate limit)."""
    return json_answer({"error": {"message": message, "type": "new_api_error"}}, status)


def result_failure(message: str) -> web.Response:
    """The extended server's 200 ``{"success": false, ...}`` for a body it cannot bind."""
    return json_answer({"success": False, "code": -1, "message": message, "timestamp": str(now_ms())})
