"""The error hierarchy, and the one place that maps HTTP statuses and result codes to it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ._logging import scrub

if TYPE_CHECKING:
    from ._models import ModalKind, TaskInfo

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "ActionRequiredError",
    "AuthenticationError",
    "BadRequestError",
    "BannedPromptError",
    "ClientClosedError",
    "InvalidCallbackError",
    "InvalidRequestError",
    "MjError",
    "NotFoundError",
    "ProxyResultError",
    "QueueFullError",
    "RateLimitError",
    "ResponseDecodeError",
    "ServerError",
    "SubmitUncertainError",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskNotFoundError",
    "UnsupportedEndpointError",
    "ValidationFailedError",
    "WaitTimeoutError",
]

MAX_KEPT_BODY: Final = 64 * 1024
"""Bytes of a response body kept on an error."""


class MjError(Exception):
    """Base class of every error mjasync raises."""


class InvalidRequestError(MjError, ValueError):
    """Bad input, raised before any request is sent."""


class ClientClosedError(MjError, RuntimeError):
    """The Client was closed: nothing more is sent, and waits still pending end with this."""


class APIError(MjError):
    """The server (or the way to it) did not give a usable answer.

    `body` is the raw response text (at most 64 KiB), `None` when there was no response.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        body: str | None = None,
        status_code: int | None = None,
        job_created: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.body = body
        self.status_code = status_code
        self.job_created = job_created
        """For submits: False when the server provably created no job, None when unknown."""


class APIConnectionError(APIError):
    """No HTTP answer: connection refused, reset, DNS or TLS failure."""

    def __init__(self, message: str, *, method: str, path: str, request_sent: bool | None) -> None:
        super().__init__(
            message, method=method, path=path, job_created=False if request_sent is False else None
        )
        self.request_sent = request_sent
        """False when the request provably never reached the server; None when unknown."""


class APITimeoutError(APIConnectionError):
    """The request timed out (connecting, or waiting for the answer)."""


class APIStatusError(APIError):
    """An HTTP error status whose body is not a proxy result envelope."""

    status_code: int


class BadRequestError(APIStatusError):
    """HTTP 400 or 413: the server refused the request as malformed or too large."""


class AuthenticationError(APIStatusError):
    """HTTP 401 or 403: the key is missing, wrong, or sent in the header style this server ignores."""


class NotFoundError(APIStatusError):
    """HTTP 404 without an envelope: usually a wrong `base_url` (missing `/mj`?) or an absent endpoint."""


class UnsupportedEndpointError(NotFoundError):
    """This server does not serve the endpoint (HTTP 404/405 without an envelope): a dialect
    difference, such as `/mj/submit/shorten` on the reference server. Nothing was created."""


class RateLimitError(APIStatusError):
    """HTTP 429: a limiter refused the request before it reached the job queue."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """HTTP 408 or 5xx without an envelope: a crash or a gateway in between."""


class ProxyResultError(APIError):
    """The proxy answered with a result `code` other than success (usually with HTTP 200)."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None,
        description: str = "",
        properties: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.code = code
        self.description = description
        self.properties: Mapping[str, Any] = properties or {}


class QueueFullError(ProxyResultError):
    """Code 23 (or a queue-full text under 9/4): nothing was created; try again later."""


class BannedPromptError(ProxyResultError):
    """Code 24: the prompt contains a banned word. Never retried."""

    @property
    def banned_word(self) -> str | None:
        word = self.properties.get("bannedWord")
        return word if isinstance(word, str) else None


class ValidationFailedError(ProxyResultError):
    """Code 4 (or -1): the server rejected the input or the parent task's state."""


class TaskNotFoundError(ProxyResultError):
    """Code 3, or a fetch for an id the server does not know (or has forgotten)."""


class ResponseDecodeError(APIError):
    """The answer is not JSON, or JSON of the wrong shape. `errors` lists what did not fit."""

    def __init__(self, message: str, *, errors: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.errors = errors or []


class SubmitUncertainError(MjError):
    """A submit may or may not have created a (paid) job, and its tag could not be found.

    Nothing was resent. Look for `state_tag` in the server's task list before submitting again.
    """

    def __init__(self, message: str, *, state_tag: str, path: str, cause: BaseException) -> None:
        super().__init__(message)
        self.state_tag = state_tag
        self.path = path
        self.cause = cause


class _TaskError(MjError):
    def __init__(self, message: str, task: TaskInfo) -> None:
        super().__init__(message)
        self.task = task


class TaskFailedError(_TaskError):
    """The job ended in FAILURE; `task.fail_reason` and `task.fail_kind` say why."""


class TaskCancelledError(_TaskError):
    """The job ended in CANCEL."""


class ActionRequiredError(_TaskError):
    """The job waits in MODAL for `Client.modal(task.id, ...)` (remix, Vary Region, Custom Zoom)."""

    def __init__(self, message: str, task: TaskInfo, *, modal_kind: ModalKind = "remix") -> None:
        super().__init__(message, task)
        self.modal_kind: ModalKind = modal_kind
        """`vary_region` needs `mask_base64` and a prompt, `custom_zoom` a prompt with `--zoom`
        1-2; `remix` takes an optional new prompt."""

    @property
    def task_id(self) -> str:
        """The MODAL task's id: what `Client.modal` takes."""
        return self.task.id


class WaitTimeoutError(MjError, TimeoutError):
    """`wait()` reached its deadline. The job was not cancelled and may still finish."""

    def __init__(self, message: str, *, task_id: str, last: TaskInfo | None) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.last = last


class InvalidCallbackError(MjError, ValueError):
    """A notifyHook delivery was refused (bad token, size or body). Never echoes the token."""


# --- classification -------------------------------------------------------------------------

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
)

_NOT_CREATED: Final = frozenset({3, 4, -1, 9, 23, 24, 30})


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
    """The typed error for a result envelope whose code is not a success."""
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
        job_created=False if code in _NOT_CREATED else None,
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
            text = text if isinstance(text, str) else ""
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
    detail = _detail(parsed, body)
    if status < 400:
        return ResponseDecodeError(
            f"{method} {path}: HTTP {status}: the answer is not a result envelope",
            method=method, path=path, body=body, status_code=status,
        )
    message = f"{method} {path}: HTTP {status}" + (f": {detail}" if detail else "")
    kwargs: dict[str, Any] = {"method": method, "path": path, "body": body, "status_code": status}
    # A gateway's own error object means the request was refused before it was forwarded.
    gateway = isinstance(parsed, dict) and isinstance(parsed.get("error"), dict)
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
        return ServerError(message, job_created=False if gateway else None, **kwargs)
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
