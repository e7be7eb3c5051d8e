"""A stand-in for the part of FastAPI the docs use: routes recorded, requests built by the test."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Endpoint = Callable[..., Awaitable[Any]]


class HTTPException(Exception):
    def __init__(self, status_code: int, detail: str = "") -> None:
        super().__init__(status_code, detail)
        self.status_code = status_code


class Request:
    def __init__(self, body: bytes) -> None:
        self._body = body

    async def body(self) -> bytes:
        return self._body


class Response:
    def __init__(self, status_code: int = 200) -> None:
        self.status_code = status_code


class FastAPI:
    def __init__(self) -> None:
        self.routes: dict[str, Endpoint] = {}

    def post(self, path: str) -> Callable[[Endpoint], Endpoint]:
        def register(endpoint: Endpoint) -> Endpoint:
            self.routes[path] = endpoint
            return endpoint

        return register

    async def call(self, path: str, token: str, body: bytes) -> int:
        """Call the route registered at `path` as FastAPI would; the HTTP status it answers."""
        try:
            response = await self.routes[path](token=token, request=Request(body))
        except HTTPException as exc:
            return exc.status_code
        return response.status_code if isinstance(response, Response) else 200
