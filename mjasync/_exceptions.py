"""The error hierarchy: classes only (`_classify` maps answers to them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import ModalKind, TaskInfo

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AccountUnavailableError",
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
    "RedirectError",
    "ResponseDecodeError",
    "ServerError",
    "StoreError",
    "SubmitUncertainError",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskNotFoundError",
    "UnsupportedEndpointError",
    "ValidationFailedError",
    "WaitTimeoutError",
]

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


class RedirectError(APIStatusError):
    """A 3xx that mjasync does not follow: to another origin than `base_url`'s (the key and the
    request body stay with that server), or past 10 redirects. `location` is where it pointed,
    without user info or query."""

    def __init__(self, message: str, *, location: str | None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.location = location


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


class AccountUnavailableError(ProxyResultError):
    """Code 3 `无可用的账号实例` / `账号不可用` on a submit: no Discord account is free, nothing
    was created. Resent with backoff first; raised when that did not help."""


class ResponseDecodeError(APIError):
    """The answer is not JSON, or JSON of the wrong shape. `errors` lists what did not fit."""

    def __init__(self, message: str, *, errors: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.errors = errors or []


class SubmitUncertainError(MjError):
    """A submit may or may not have created a (paid) job, and its tag could not be found.

    Nothing was resent. The client keeps looking for the tag in the background for a while;
    `await client.find(state_tag)` returns the job once it shows up (None until then).
    """

    def __init__(self, message: str, *, state_tag: str, path: str, cause: BaseException) -> None:
        super().__init__(message)
        self.state_tag = state_tag
        self.path = path
        self.cause = cause


class StoreError(MjError):
    """The job store could not be read or written. Raised before a submit is sent: no job is
    ever sent without its record."""


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
