"""Retry policies as data: which failures may be resent, how long to wait. No I/O."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from tenacity import AsyncRetrying, RetryCallState

from ._exceptions import (
    APIConnectionError,
    APIError,
    ProxyResultError,
    QueueFullError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
)
from ._logging import logger
from ._stats import ClientStats

__all__ = ["RequestKind", "is_retryable", "retrying"]

MAX_RETRY_AFTER: Final = 60.0
"""Seconds: a server's Retry-After is honoured up to this."""
MAX_BACKOFF_FACTOR: Final = 16
"""The random exponential backoff is capped at `backoff * 16` seconds (8 s by default)."""
RETRY_DEADLINE: Final = 120.0
"""Seconds: no retry starts after a call has spent this long."""


class RequestKind(enum.Enum):
    """READ requests may be resent on any transient failure; SUBMIT only when nothing was created."""

    READ = "read"
    SUBMIT = "submit"


def _read_retryable(exc: BaseException) -> bool:
    # A garbled answer to a read (a proxy cut it short) is worth reading again.
    if isinstance(exc, APIConnectionError | RateLimitError | ServerError | ResponseDecodeError):
        return True
    return isinstance(exc, ProxyResultError) and exc.code == 30


def _submit_resendable(exc: BaseException) -> bool:
    """Only failures that prove no job exists: never reached the server, or refused by a limiter."""
    if not isinstance(exc, APIError) or exc.job_created is not False:
        return False
    if isinstance(exc, APIConnectionError | RateLimitError | QueueFullError | ServerError):
        return True
    return isinstance(exc, ProxyResultError) and exc.code == 30


_PREDICATES: Final = {RequestKind.READ: _read_retryable, RequestKind.SUBMIT: _submit_resendable}


def is_retryable(kind: RequestKind, exc: BaseException) -> bool:
    """Whether the policy of `kind` allows another attempt after `exc` (an allow-list)."""
    return _PREDICATES[kind](exc)


def _wait(backoff: float) -> Callable[[RetryCallState], float]:
    """The server's Retry-After when it sent one, else full-jitter exponential backoff."""
    import tenacity

    jitter = tenacity.wait_random_exponential(multiplier=backoff, max=backoff * MAX_BACKOFF_FACTOR)

    def wait(retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            return min(exc.retry_after, MAX_RETRY_AFTER)
        return float(jitter(retry_state))

    return wait


def _log_retry(stats: ClientStats, retry_state: RetryCallState) -> None:
    stats.retries += 1
    outcome = retry_state.outcome
    exc = outcome.exception() if outcome is not None else None
    wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
    where = f"{exc.method} {exc.path}" if isinstance(exc, APIError) else "request"
    logger.info(
        "retrying %s: attempt %d failed with %s; next in %.2f s",
        where,
        retry_state.attempt_number,
        type(exc).__name__,
        wait,
    )


def retrying(kind: RequestKind, *, max_retries: int, backoff: float, stats: ClientStats) -> AsyncRetrying:
    """A fresh tenacity controller for one call of this kind.

    Built only after a first attempt failed: tenacity is imported, and its objects made, only
    on the retry path (they cost tens of microseconds and cyclic garbage per call).
    """
    import tenacity

    return tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(_PREDICATES[kind]),
        wait=_wait(backoff),
        stop=tenacity.stop_after_attempt(max_retries + 1) | tenacity.stop_before_delay(RETRY_DEADLINE),
        before_sleep=functools.partial(_log_retry, stats),
        reraise=True,
    )
