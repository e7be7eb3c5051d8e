"""A listening socket for the callback receiver that caps the connections held open at once:
aiohttp's server has no such limit, so a slowloris could hold sockets until the process ran out
of file descriptors. (The header deadline is aiohttp's own `keepalive_timeout`.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

__all__ = ["DEFAULT_HEADER_TIMEOUT", "DEFAULT_MAX_CONNECTIONS", "Guard"]

DEFAULT_HEADER_TIMEOUT: Final = 10.0
"""Seconds a connection has, from connecting or from its last response, to send the next
request's headers in full; then it is closed."""
DEFAULT_MAX_CONNECTIONS: Final = 256
"""Connections held open at once; one more is closed as soon as it connects."""


class Guard:
    """The protocol factory for `loop.create_server`: each connection gets a protocol of
    `factory` (the aiohttp server), unless `max_connections` are open already."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], *, max_connections: int) -> None:
        self.factory = factory
        self.max_connections = max_connections
        self._open = 0

    def __call__(self) -> asyncio.Protocol:
        return _Counted(self)

    def admit(self) -> bool:
        """Count one more connection; False (and not counted) at the cap."""
        if self._open >= self.max_connections:
            return False
        self._open += 1
        return True

    def release(self) -> None:
        self._open -= 1


class _Counted(asyncio.Protocol):
    """One connection: closed at once past the cap, else handed to the aiohttp protocol as is."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard
        self._inner: asyncio.Protocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._guard.admit():
            transport.close()
            return
        self._inner = self._guard.factory()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            self._guard.release()
            inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()
