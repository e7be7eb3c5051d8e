"""mjasync: an async SDK for Midjourney proxy APIs (the `/mj/...` HTTP API).

Everything public is listed in `__all__`; modules and names starting with `_` are private.
"""

from __future__ import annotations

from ._batch import DEFAULT_MAX_IN_FLIGHT, BatchResult
from ._client import Client
from ._exceptions import (
    AccountUnavailableError,
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
    RedirectError,
    ResponseDecodeError,
    ServerError,
    StoreError,
    SubmitUncertainError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotFoundError,
    UnsupportedEndpointError,
    ValidationFailedError,
    WaitTimeoutError,
)
from ._logging import redact_logs
from ._memory_store import MemoryStore
from ._models import (
    Button,
    CustomId,
    Dimensions,
    ModalKind,
    PanDirection,
    SubmitResult,
    TaskAction,
    TaskInfo,
    TaskStatus,
    parse_custom_id,
)
from ._options import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    ClientOptions,
)
from ._redis_store import RedisStore
from ._sqlite_store import SQLiteStore
from ._stats import ClientStats
from ._store import JobRecord, Store
from ._task import DEFAULT_WAIT_TIMEOUT, BodyOptions, ImagineOptions, SubmitOptions, Task
from ._transport import AuthStyle
from ._validate import BotType, UpscaleStyle, VideoMotion
from ._version import __version__

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WAIT_TIMEOUT",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AccountUnavailableError",
    "ActionRequiredError",
    "AuthStyle",
    "AuthenticationError",
    "BadRequestError",
    "BannedPromptError",
    "BatchResult",
    "BodyOptions",
    "BotType",
    "Button",
    "Client",
    "ClientClosedError",
    "ClientOptions",
    "ClientStats",
    "CustomId",
    "Dimensions",
    "ImagineOptions",
    "InvalidCallbackError",
    "InvalidRequestError",
    "JobRecord",
    "MemoryStore",
    "MjError",
    "ModalKind",
    "NotFoundError",
    "PanDirection",
    "ProxyResultError",
    "QueueFullError",
    "RateLimitError",
    "RedirectError",
    "RedisStore",
    "ResponseDecodeError",
    "SQLiteStore",
    "ServerError",
    "Store",
    "StoreError",
    "SubmitOptions",
    "SubmitResult",
    "SubmitUncertainError",
    "Task",
    "TaskAction",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskInfo",
    "TaskNotFoundError",
    "TaskStatus",
    "UnsupportedEndpointError",
    "UpscaleStyle",
    "ValidationFailedError",
    "VideoMotion",
    "WaitTimeoutError",
    "__version__",
    "parse_custom_id",
    "redact_logs",
]

# Reprs and tracebacks say mjasync.X, not mjasync._module.X.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("mjasync._"):
        _obj.__module__ = "mjasync"
del _name, _obj
