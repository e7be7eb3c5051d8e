"""mjasync: an async SDK for Midjourney proxy APIs (the `/mj/...` HTTP API).

Everything public is listed in `__all__`; modules and names starting with `_` are private.
"""

from __future__ import annotations

from ._client import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    BotType,
    Client,
)
from ._exceptions import (
    ActionRequiredError,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BannedPromptError,
    ClientClosedError,
    InvalidCallbackError,
    InvalidRequestError,
    MjError,
    NotFoundError,
    ProxyResultError,
    QueueFullError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    SubmitUncertainError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotFoundError,
    ValidationFailedError,
    WaitTimeoutError,
)
from ._models import Button, ClientStats, SubmitResult, TaskAction, TaskInfo, TaskStatus
from ._task import DEFAULT_WAIT_TIMEOUT, Task
from ._transport import AuthStyle
from ._version import __version__

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WAIT_TIMEOUT",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "ActionRequiredError",
    "AuthStyle",
    "AuthenticationError",
    "BadRequestError",
    "BannedPromptError",
    "BotType",
    "Button",
    "Client",
    "ClientClosedError",
    "ClientStats",
    "InvalidCallbackError",
    "InvalidRequestError",
    "MjError",
    "NotFoundError",
    "ProxyResultError",
    "QueueFullError",
    "RateLimitError",
    "ResponseDecodeError",
    "ServerError",
    "SubmitResult",
    "SubmitUncertainError",
    "Task",
    "TaskAction",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskInfo",
    "TaskNotFoundError",
    "TaskStatus",
    "ValidationFailedError",
    "WaitTimeoutError",
    "__version__",
]

# Reprs and tracebacks say mjasync.X, not mjasync._module.X.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("mjasync._"):
        _obj.__module__ = "mjasync"
del _name, _obj
