"""The `mjasync` logger, its MJASYNC_LOG switch, and redaction of secrets."""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "logger",
    "redact_headers",
    "redact_logs",
    "redact_url",
    "register_secret",
    "scrub",
    "setup_from_env",
]

logger: Final = logging.getLogger("mjasync")
logger.addHandler(logging.NullHandler())  # silent unless the application configures logging

SECRET_HEADERS: Final = frozenset({"authorization", "mj-api-secret", "x-api-key"})
_REDACTED: Final = "***"


class _Secret(str):
    """A secret string: weak-referenceable (for the filter's registry), and `***` in any repr, so a
    traceback that shows local variables does not show it. JSON and str() see the real value."""

    __slots__ = ("__weakref__",)

    def __repr__(self) -> str:
        return repr(_REDACTED)


class _SecretFilter(logging.Filter):
    """Last line of defence: scrub registered secrets from any record of the mjasync logger."""

    def __init__(self) -> None:
        super().__init__("mjasync")
        # Keyed by id: a WeakSet would keep one of two equal secrets and forget both when the
        # first owner dies (two clients with the same key, one closed and collected).
        self.secrets: weakref.WeakValueDictionary[int, _Secret] = weakref.WeakValueDictionary()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            scrubbed = scrub(message)
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
        return True


_filter: Final = _SecretFilter()
logger.addFilter(_filter)


class _RecordScrubber(logging.Filter):
    """Scrubs registered secrets from any record it sees, in place: the message, each argument
    and the string fields a logger adds (aiohttp's `first_request_line`). Arguments keep their
    places, as formatters such as uvicorn's unpack them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _filter.secrets:
            return True
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_scrub_arg(arg) for arg in args)
        elif isinstance(args, Mapping):
            record.args = {key: _scrub_arg(value) for key, value in args.items()}
        record.msg = _scrub_arg(record.msg)
        fields = vars(record)
        fields.update({key: scrub(value) for key, value in fields.items() if isinstance(value, str)})
        return True


def _scrub_arg(value: object) -> object:
    """A string scrubbed; another object as is, or as its scrubbed str() when that shows a secret."""
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, int | float):
        return value
    text = str(value)
    scrubbed = scrub(text)
    return value if scrubbed == text else scrubbed


_scrubber: Final = _RecordScrubber()
ACCESS_LOGGERS: Final = ("aiohttp.access", "uvicorn.access")


def redact_logs(*names: str) -> logging.Filter:
    """Scrub every registered secret (callback tokens, keys) from the records of the loggers
    `names` (by default aiohttp's and uvicorn's access logs, which show a hook's path, token
    included). Idempotent; returns the filter, which a handler can take too (`addFilter`)."""
    for name in names or ACCESS_LOGGERS:
        logging.getLogger(name).addFilter(_scrubber)
    return _scrubber


def scrub(text: str) -> str:
    """`text` with every registered secret (API keys, callback tokens) replaced by ***."""
    secrets = {s for s in _filter.secrets.values() if s and s in text}
    for secret in secrets:
        text = text.replace(secret, _REDACTED)
    return text


def register_secret(value: str) -> str:
    """Remember a secret for the log filter; keep the returned object alive as long as it is used."""
    secret = _Secret(value)
    _filter.secrets[id(secret)] = secret
    return secret


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of `headers` safe to log."""
    return {k: _REDACTED if k.lower() in SECRET_HEADERS else v for k, v in headers.items()}


def redact_url(url: str) -> str:
    """`url` without user info, query or fragment (where credentials and tokens hide); `***`
    for a URL that does not parse (a bad port), as this runs inside reprs."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return _REDACTED
    host = parts.hostname or ""
    if port is not None:
        host = f"{host}:{port}"
    if parts.username or parts.password:
        host = f"{_REDACTED}@{host}"
    return urlunsplit((parts.scheme, host, parts.path, _REDACTED if parts.query else "", ""))


def setup_from_env() -> None:
    """Honour MJASYNC_LOG=info|debug once: attach a stderr handler to the mjasync logger."""
    level = os.environ.get("MJASYNC_LOG", "").strip().upper()
    configured = any(not isinstance(handler, logging.NullHandler) for handler in logger.handlers)
    if level not in ("INFO", "DEBUG") or configured:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
