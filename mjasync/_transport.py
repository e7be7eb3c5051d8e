"""The only module that sends HTTP: URLs, auth headers, timeouts, error mapping, retries."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Literal, TypeVar
from urllib.parse import parse_qs, unquote, urljoin, urlsplit, urlunsplit

import aiohttp
import attrs

from ._classify import decode_body, error_for_body, parse_json
from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    InvalidRequestError,
    MjError,
    RedirectError,
    ResponseDecodeError,
)
from ._logging import logger, redact_headers, redact_url, register_secret, scrub
from ._retry import RETRY_DEADLINE, RequestKind, backoff_wait, is_retryable, retrying
from ._stats import ClientStats
from ._version import __version__

__all__ = [
    "AuthStyle",
    "Config",
    "Consume",
    "Decoder",
    "SessionHolder",
    "Transport",
    "read_capped",
]

T = TypeVar("T")
Consume = Callable[[aiohttp.ClientResponse], Awaitable[None]]
"""Reads a successful response's body as it arrives (a download writing to disk)."""
Decoder = Callable[[str, str, Any, bytes], T]
"""Turns (method, path, decoded JSON, raw body) into a result, or raises a typed error."""

AuthStyle = Literal["bearer", "mj-api-secret", "authorization"]
MODE_SHORTCUTS: Final = {"fast": "mj-fast", "relax": "mj-relax", "turbo": "mj-turbo"}
CONNECTIONS: Final = 100
"""Requests in flight at once per client (and its copies), and the connection pool's size."""
MIN_SECRET_LENGTH: Final = 8
"""Query values in base_url this long or longer are treated as secrets (`?key=...`)."""
MAX_BODY: Final = 32 * 1024 * 1024
"""Bytes: a longer JSON answer is refused rather than read into memory."""
MAX_REDIRECTS: Final = 10
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@attrs.frozen
class Config:
    """Everything a Transport needs to build and send one request."""

    base_url: str
    api_key: str | None = attrs.field(repr=False)
    auth: AuthStyle
    mode: str | None
    timeout: float
    connect_timeout: float
    max_retries: int
    retry_backoff: float


class _Headers(dict[str, str]):
    """Request headers whose repr hides secrets (tracebacks with locals, debuggers)."""

    def __repr__(self) -> str:
        return repr(redact_headers(self))


class _URL(str):
    """A request URL whose repr hides user info and query (where `?key=` secrets hide)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(redact_url(self))


class _Body(bytes):
    """An encoded request body whose repr is its size only: it may carry a hook URL or images."""

    def __repr__(self) -> str:
        return f"<{len(self)} bytes>"


def auth_headers(style: AuthStyle, api_key: str | None) -> dict[str, str]:
    """The header that carries the key in the chosen style; none without a key. Its value is a
    registered secret: `***` in any repr (aiohttp's header dicts in a traceback's locals too)."""
    if not api_key:
        return {}
    if style == "bearer":
        return {"Authorization": register_secret(f"Bearer {api_key}")}
    if style == "authorization":
        return {"Authorization": register_secret(api_key)}
    return {"mj-api-secret": register_secret(api_key)}


def _basic_auth(username: str | None, password: str | None) -> dict[str, str]:
    """base_url's user info as an Authorization header (a secret), so the URL handed to aiohttp
    carries none."""
    if not username and not password:
        return {}
    pair = f"{unquote(username or '')}:{unquote(password or '')}".encode()
    return {"Authorization": register_secret(f"Basic {base64.b64encode(pair).decode('ascii')}")}


def _origin_of(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme)


class SessionHolder:
    """One aiohttp session, created lazily on first use, shared by a client and its copies."""

    def __init__(self, session: aiohttp.ClientSession | None, *, verify_tls: bool = True) -> None:
        self._session = session
        self._owned = session is None
        self._verify_tls = verify_tls
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        self.slots = asyncio.Semaphore(CONNECTIONS)
        """Requests in flight. Callers queue here, before the request's timeout starts, so ten
        thousand submits at once wait their turn instead of timing out in aiohttp's pool (which
        would look like an ambiguous failure)."""

    def get(self) -> aiohttp.ClientSession:
        if self.closed:
            raise ClientClosedError("this Client is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise MjError(
                "this Client was first used in another event loop; create one Client per loop"
            )
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=CONNECTIONS, ssl=self._verify_tls)
            self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
        return self._session

    async def close(self) -> None:
        """Refuse further use; close the session if mjasync created it (a caller's stays open)."""
        self.closed = True
        session, self._session = self._session, None
        if session is not None and self._owned and not session.closed:
            await session.close()


class Transport:
    """Sends one logical request (with the retries its kind allows) and maps every failure."""

    def __init__(self, config: Config, sessions: SessionHolder) -> None:
        self.config = config
        self.sessions = sessions
        self.stats = ClientStats()
        prefix = MODE_SHORTCUTS.get(config.mode or "", config.mode or "").strip("/")
        base = urlsplit(config.base_url)
        # Credentials and query values in base_url are secrets too; the query goes after our path.
        query_values = [value for values in parse_qs(base.query).values() for value in values]
        secrets = [base.password, *(value for value in query_values if len(value) >= MIN_SECRET_LENGTH)]
        self._secrets = [register_secret(secret) for secret in secrets if secret]
        if base.username and config.api_key and config.auth != "mj-api-secret":
            raise InvalidRequestError(
                "base_url carries credentials and the key goes in the Authorization header too; "
                "use one of them (or auth='mj-api-secret')"
            )
        self._origin = _origin_of(config.base_url)
        path = base.path.rstrip("/") + (f"/{prefix}" if prefix else "")
        netloc = base.netloc.rpartition("@")[2]
        self._root = urlunsplit((base.scheme, netloc, path, "", ""))
        self._query = f"?{base.query}" if base.query else ""
        self._headers = _Headers(
            {
                "User-Agent": f"mjasync/{__version__}",
                "Accept": "application/json",
                **_basic_auth(base.username, base.password),
                **auth_headers(config.auth, config.api_key),
            }
        )
        self._json_headers = _Headers({**self._headers, "Content-Type": "application/json"})
        # Image URLs point anywhere (Discord's CDN, a relay's): the key goes only to base_url's host.
        self._foreign_headers = _Headers({"User-Agent": self._headers["User-Agent"]})
        self._timeout = self._timeout_of(config.timeout)

    def _timeout_of(self, total: float) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=total, connect=self.config.connect_timeout)

    async def request(
        self,
        method: str,
        path: str,
        decode: Decoder[T],
        *,
        body: Mapping[str, Any] | None = None,
        kind: RequestKind = RequestKind.READ,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> T:
        """Send under the retry policy of `kind`; `decode` runs inside each attempt, so the
        typed errors it raises are retried by the same rules as transport failures."""
        data = None if body is None else _Body(json.dumps(body, ensure_ascii=False).encode())
        return await self._with_retries(
            kind, retries, lambda: self._attempt(method, path, data, timeout, decode)
        )

    async def get_bytes(self, url: str, *, timeout: float | None = None) -> bytes:
        """GET an absolute URL (a result image) with this client's session and READ retries."""
        chunks: list[bytes] = []

        async def keep(response: aiohttp.ClientResponse) -> None:
            chunks.clear()
            chunks.append(await response.read())

        await self.stream(url, keep, timeout=timeout)
        return chunks[0]

    async def stream(self, url: str, consume: Consume, *, timeout: float | None = None) -> None:
        """GET an absolute URL and hand a successful response to `consume` (which reads its body
        as it arrives), with READ retries: `consume` starts over on every attempt."""

        foreign = _origin_of(url) != self._origin

        async def attempt() -> None:
            status, raw, _ = await self._send(
                "GET", url, "image", None, timeout, limit=None, consume=consume, anonymous=foreign
            )
            if status >= 400:
                raise error_for_body("GET", "image", status, raw, None, retry_after=None)

        await self._with_retries(RequestKind.READ, None, attempt)

    async def _with_retries(
        self, kind: RequestKind, retries: int | None, attempt: Callable[[], Awaitable[T]]
    ) -> T:
        """`attempt()`, retried under the policy of `kind` (up to `retries`, else the configured
        number). The first attempt runs bare, as tenacity's objects cost tens of microseconds a
        call; after a retryable failure tenacity replays it as its own first attempt, so the
        waits, the stop rule and the logs are all tenacity's."""
        try:
            return await attempt()
        except MjError as exc:
            max_retries = self.config.max_retries if retries is None else retries
            if max_retries == 0 or not is_retryable(kind, exc):
                raise
            first: MjError | None = exc

            async def replay_then_attempt() -> T:
                nonlocal first
                if first is not None:
                    failed, first = first, None
                    raise failed
                return await attempt()

            controller = retrying(
                kind,
                wait=backoff_wait(self.config.retry_backoff, retry_after=True),
                attempts=max_retries + 1,
                deadline=RETRY_DEADLINE,
                stats=self.stats,
            )
            return await controller(replay_then_attempt)

    async def _attempt(
        self, method: str, path: str, data: bytes | None, timeout: float | None, decode: Decoder[T]
    ) -> T:
        status, raw, retry_after = await self._send(
            method, _URL(f"{self._root}{path}{self._query}"), path, data, timeout, limit=MAX_BODY
        )
        ok, parsed = (True, None) if not raw or raw.isspace() else parse_json(raw)
        if status >= 300 or (isinstance(parsed, dict) and parsed.get("success") is False):
            raise error_for_body(
                method, path, status, raw, parsed, retry_after=retry_after, auth=self.config.auth
            )
        if not ok:
            raise ResponseDecodeError(
                f"{method} {path}: HTTP {status}: the answer is not JSON",
                method=method, path=path, body=decode_body(raw), status_code=status,
            )
        return decode(method, path, parsed, raw)

    async def _send(
        self,
        method: str,
        url: str,
        path: str,
        data: bytes | None,
        timeout: float | None,
        *,
        limit: int | None,
        consume: Consume | None = None,
        anonymous: bool = False,
    ) -> tuple[int, bytes, float | None]:
        """One request and its redirects; the body is read whole, or handed to `consume` when
        the status is 2xx. `anonymous` leaves the auth header out (a URL on another host).

        A redirect within base_url's origin is followed with the credentials (303, and 301/302
        after a POST, as a GET without the body). One to another origin is not, as it would
        carry the key or the body there: it raises RedirectError, except for a download (an
        image URL), which follows it anonymously.
        """
        for _ in range(MAX_REDIRECTS + 1):
            status, raw, retry_after, location = await self._send_once(
                method, url, path, data, timeout, limit=limit, consume=consume, anonymous=anonymous
            )
            if location is None:
                return status, raw, retry_after
            try:
                target = _URL(urljoin(url, location))
                origin, userinfo = _origin_of(target), urlsplit(target).netloc.rpartition("@")[1]
            except ValueError:  # a bad host or port
                raise self._redirect_error(method, path, status, raw, "", "to an invalid URL") from None
            if userinfo:
                raise self._redirect_error(method, path, status, raw, target, "to a URL with credentials")
            if not anonymous and origin != self._origin:
                if consume is None:
                    raise self._redirect_error(method, path, status, raw, target, "to another origin")
                anonymous = True
            if status == 303 or (status in (301, 302) and method == "POST"):
                method, data = "GET", None
            logger.debug("%s %s: HTTP %d, following to %s", method, path, status, redact_url(target))
            url = target
        raise self._redirect_error(method, path, status, raw, target, f"more than {MAX_REDIRECTS} times")

    @staticmethod
    def _redirect_error(
        method: str, path: str, status: int, raw: bytes, target: str, why: str
    ) -> RedirectError:
        where = scrub(redact_url(target))
        shown = f" ({where})" if where else ""
        return RedirectError(
            f"{method} {path}: HTTP {status}: redirected {why}{shown}; not followed",
            location=where or None, method=method, path=path, body=decode_body(raw), status_code=status,
            # 303 "see other" may follow work done; the others send the request elsewhere.
            job_created=None if status == 303 else False,
        )

    async def _send_once(
        self,
        method: str,
        url: str,
        path: str,
        data: bytes | None,
        timeout: float | None,
        *,
        limit: int | None,
        consume: Consume | None,
        anonymous: bool,
    ) -> tuple[int, bytes, float | None, str | None]:
        """One HTTP exchange, redirects not followed: (status, body, Retry-After, Location of a redirect)."""
        session = self.sessions.get()
        self.stats.requests += 1
        if anonymous:
            headers = self._foreign_headers
        else:
            headers = self._headers if data is None else self._json_headers
        client_timeout = self._timeout if timeout is None else self._timeout_of(timeout)
        debug = logger.isEnabledFor(logging.DEBUG)
        if debug:
            logger.debug("%s %s headers=%s", method, path, redact_headers(headers))
        try:
            async with self.sessions.slots, session.request(
                method, url, data=data, headers=headers, timeout=client_timeout, allow_redirects=False
            ) as response:
                if consume is not None and response.status < 300:
                    await consume(response)
                    return response.status, b"", None, None
                raw = await _read(response, limit)
                if raw is None:
                    raise ResponseDecodeError(
                        f"{method} {path}: the answer is over {limit} bytes",
                        method=method, path=path, status_code=response.status,
                    )
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After")) if status >= 400 else None
                location = response.headers.get("Location") if status in _REDIRECTS else None
        except aiohttp.ConnectionTimeoutError as exc:
            raise APITimeoutError(
                f"{method} {path}: timed out connecting", method=method, path=path,
                request_sent=False,
            ) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise APITimeoutError(
                f"{method} {path}: timed out waiting for the answer", method=method, path=path,
                request_sent=None,
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise APIConnectionError(
                f"{method} {path}: could not connect ({type(exc).__name__})", method=method,
                path=path, request_sent=False,
            ) from exc
        except aiohttp.ClientError as exc:
            raise APIConnectionError(
                f"{method} {path}: connection lost ({type(exc).__name__})", method=method,
                path=path, request_sent=None,
            ) from exc
        if debug:
            logger.debug("%s %s -> HTTP %d, %d bytes", method, path, status, len(raw))
        return status, raw, retry_after, location


async def _read(response: aiohttp.ClientResponse, limit: int | None) -> bytes | None:
    """The whole body, or None as soon as it is known to be over `limit` bytes (chunked too)."""
    if limit is None:
        return await response.read()
    if response.content_length is not None:
        return None if response.content_length > limit else await response.read()
    return await read_capped(response.content, limit)


async def read_capped(stream: aiohttp.StreamReader, limit: int) -> bytes | None:
    """A body read as it arrives, or None as soon as it passes `limit` bytes (a chunked one too)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
