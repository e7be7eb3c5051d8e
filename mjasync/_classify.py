"""The one place that maps answers to errors: HTTP statuses, result codes and body shapes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from ._exceptions import (
    AccountUnavailableError,
    APIError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    BannedPromptError,
    NotFoundError,
    ProxyResultError,
    QueueFullError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    TaskNotFoundError,
    UnsupportedEndpointError,
    ValidationFailedError,
)
from ._logging import scrub

__all__ = ["decode_body", "endpoint_missing", "error_for_body", "parse_json", "proxy_error", "unsupported"]

MAX_KEPT_BODY: Final = 64 * 1024
"""Bytes of a response body kept on an error."""

_BY_CODE: Final[Mapping[int, type[ProxyResultError]]] = {
    3: TaskNotFoundError,
    4: ValidationFailedError,
    -1: ValidationFailedError,
    23: QueueFullError,
    24: BannedPromptError,
}

# Texts vary per deployment: a match refines an error class, never turns it into a success.
_BY_TEXT: Final = (
    (("队列已满", "队列数已达上限", "并发数已达上限"), QueueFullError),
    (("敏感词", "Banned prompt"), BannedPromptError),
    (("task_no_found", "task_not_found"), TaskNotFoundError),
    (("无可用的账号实例", "账号不可用"), AccountUnavailableError),
)

_NOT_CREATED: Final = frozenset({3, 4, -1, 23, 24, 30})
"""Codes that prove no job exists. Not 9: the extended server can fail after saving and
enqueueing the task (protocol.md section 14), so a 9 is ambiguous unless its text says queue full."""

_NEVER_FORWARDED: Final = ("无可用渠道", "no available channel")
"""Texts of a relay's own 503 that prove the request never left it (protocol.md section 5)."""


def proxy_error(
    method: str,
    path: str,
    *,
    code: int,
    description: str,
    properties: Mapping[str, Any] | None,
    body: str,
    status_code: int | None,
) -> ProxyResultError:
    """The typed error for a result envelope whose code is not a success. Server texts are
    scrubbed of registered secrets, as kept bodies are: a server may echo the key or the hook."""
    description = scrub(description)
    if properties is not None:
        properties = {key: scrub(v) if isinstance(v, str) else v for key, v in properties.items()}
    cls = _BY_CODE.get(code, ProxyResultError)
    for needles, refined in _BY_TEXT:
        if any(needle in description for needle in needles):
            cls = refined
            break
    message = f"{method} {path}: code {code}: {description.strip() or 'no description'}"
    return cls(
        message,
        code=code,
        description=description,
        properties=properties,
        method=method,
        path=path,
        body=body,
        status_code=status_code,
        job_created=False if code in _NOT_CREATED or cls is QueueFullError else None,
    )


def endpoint_missing(exc: BaseException) -> bool:
    """True for a 404/405 without a result envelope: the server lacks the endpoint itself."""
    return isinstance(exc, APIStatusError) and exc.status_code in (404, 405)


def unsupported(exc: APIStatusError, served_by: str | None = None) -> UnsupportedEndpointError:
    """The UnsupportedEndpointError for a missing endpoint's 404/405, naming who serves it."""
    where = f"; it is served by {served_by}" if served_by else ""
    return UnsupportedEndpointError(
        f"{exc.method} {exc.path}: this server does not serve this endpoint (HTTP {exc.status_code}){where}",
        method=exc.method, path=exc.path, body=exc.body, status_code=exc.status_code, job_created=False,
    )


def decode_body(raw: bytes) -> str:
    """The kept text of a body: UTF-8 whatever the label says, capped at 64 KiB, secrets scrubbed."""
    return scrub(raw[:MAX_KEPT_BODY].decode("utf-8", errors="replace"))


def parse_json(raw: bytes) -> tuple[bool, Any]:
    """(True, value) when the body is JSON (read as UTF-8 whatever the label), else (False, None)."""
    try:
        return True, json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError included; absurdly deep nesting
        return False, None


def error_for_body(
    method: str,
    path: str,
    status: int,
    raw: bytes,
    parsed: Any,
    *,
    retry_after: float | None,
    auth: str | None = None,
) -> APIError:
    """The typed error for an answer that is not a success, by body shape first, then status.

    `auth` (the header style sent) goes into the message of a 401/403, with the alternatives.
    """
    body = decode_body(raw)
    if isinstance(parsed, dict):
        code = parsed.get("code")
        if parsed.get("success") is False and isinstance(code, int):
            text = parsed.get("message")
            text = scrub(text) if isinstance(text, str) else ""
            if status >= 500:  # the extended server's crash shape: the outcome is unknown
                return ServerError(
                    f"{method} {path}: HTTP {status}: {text}".rstrip(": "),
                    method=method, path=path, body=body, status_code=status, job_created=None,
                )
            return proxy_error(
                method, path, code=code, description=text, properties=None, body=body, status_code=status,
            )
        if isinstance(code, int) and not isinstance(code, bool):
            description = parsed.get("description")
            properties = parsed.get("properties")
            return proxy_error(
                method, path, code=code,
                description=description if isinstance(description, str) else "",
                properties=properties if isinstance(properties, dict) else None,
                body=body, status_code=status,
            )
    detail = scrub(_detail(parsed, body))
    if status < 400:
        return ResponseDecodeError(
            f"{method} {path}: HTTP {status}: the answer is not a result envelope",
            method=method, path=path, body=body, status_code=status,
        )
    message = f"{method} {path}: HTTP {status}" + (f": {detail}" if detail else "")
    kwargs: dict[str, Any] = {"method": method, "path": path, "body": body, "status_code": status}
    # A gateway's 5xx may come after it forwarded the submit: only a text proves it did not.
    never_forwarded = status == 503 and any(text in detail for text in _NEVER_FORWARDED)
    if status in (401, 403):
        if auth is not None:
            others = " or ".join(repr(s) for s in ("bearer", "authorization", "mj-api-secret") if s != auth)
            message += f" (the key was sent with auth={auth!r}; this server may expect {others})"
        return AuthenticationError(message, job_created=False, **kwargs)
    if status == 429:
        return RateLimitError(message, retry_after=retry_after, job_created=False, **kwargs)
    if status == 404:
        if body.lstrip().startswith("<"):
            message += " (an HTML page: is base_url right, with the path before /mj?)"
        return NotFoundError(message, job_created=False, **kwargs)
    if status in (400, 413):
        return BadRequestError(message, job_created=False, **kwargs)
    if status == 408 or status >= 500:
        return ServerError(message, job_created=False if never_forwarded else None, **kwargs)
    return APIStatusError(message, job_created=False, **kwargs)


def _detail(parsed: Any, body: str) -> str:
    """A short human text from a known error body shape (gateway, Spring) or a short plain-text
    body (`Authorization header missing.`), else ''."""
    if not isinstance(parsed, dict):
        text = body.strip()
        return text if parsed is None and 0 < len(text) <= 200 and not text.startswith("<") else ""
    error = parsed.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:200]
    for key in ("message", "description", "error"):
        value = parsed.get(key)
        if isinstance(value, str):
            return value[:200]
    return ""
