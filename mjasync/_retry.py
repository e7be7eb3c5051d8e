"""Retry policies as data: which failures may be resent, how long to wait, when to stop. No I/O.

Every retry in mjasync (requests, action submits on a fresh parent, a batch waiting out a full
queue) is a tenacity controller from `retrying`.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import Final

import tenacity
from tenacity import AsyncRetrying, RetryCallState

from ._exceptions import (
    AccountUnavailableError,
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

__all__ = [
    "RETRY_DEADLINE",
    "RequestKind",
    "backoff_wait",
    "is_retryable",
    "retrying",
    "server_full",
    "uniform_wait",
]

MAX_RETRY_AFTER: Final = 60.0
"""Seconds: a server's Retry-After is honoured up to this."""
MAX_BACKOFF_FACTOR: Final = 16
"""The random exponential backoff is capped at `backoff * 16` seconds (8 s by default)."""
RETRY_DEADLINE: Final = 120.0
"""Seconds: no retry of a request starts after its retries have spent this long."""

Predicate = Callable[[BaseException], bool]
"""Whether a failure may be followed by another attempt (an allow-list: never CancelledError)."""
Wait = Callable[[RetryCallState], float]
"""Seconds to sleep before the next attempt."""


class RequestKind(enum.Enum):
    """READ requests may be resent on any transient failure; SUBMIT only when nothing was created."""

    READ = "read"
    SUBMIT = "submit"


def _relay_busy(exc: BaseException) -> bool:
    """Relay code 30: the relay refused the request for now."""
    return isinstance(exc, ProxyResultError) and exc.code == 30


def _read_retryable(exc: BaseException) -> bool:
    # A garbled answer to a read (a proxy cut it short) is worth reading again.
    if isinstance(exc, APIConnectionError | RateLimitError | ServerError | ResponseDecodeError):
        return True
    return _relay_busy(exc)


def _nothing_created(exc: BaseException) -> bool:
    return isinstance(exc, APIError) and exc.job_created is False


def server_full(exc: BaseException) -> bool:
    """Refusals that prove nothing was created: queue full (23, 9/4 texts), 429, relay code 30.

    The part of the SUBMIT policy that says "the server is busy": a batch waits these out.
    """
    return _nothing_created(exc) and (isinstance(exc, QueueFullError | RateLimitError) or _relay_busy(exc))


def _submit_resendable(exc: BaseException) -> bool:
    """Only failures that prove no job exists: never reached the server, refused by a limiter,
    or no Discord account free (code 3 `无可用的账号实例`)."""
    kinds = APIConnectionError | ServerError | AccountUnavailableError
    return server_full(exc) or (_nothing_created(exc) and isinstance(exc, kinds))


_PREDICATES: Final[dict[RequestKind, Predicate]] = {
    RequestKind.READ: _read_retryable,
    RequestKind.SUBMIT: _submit_resendable,
}


def is_retryable(kind: RequestKind, exc: BaseException) -> bool:
    """Whether the policy of `kind` allows another attempt after `exc` (an allow-list)."""
    return _PREDICATES[kind](exc)


def backoff_wait(backoff: float, *, fixed: float = 0.0, retry_after: bool = False) -> Wait:
    """`fixed` seconds plus full-jitter exponential backoff from `backoff` (capped at 16x); with
    `retry_after`, the server's Retry-After (up to 60 s) instead when it sent one."""
    jitter = tenacity.wait_random_exponential(multiplier=backoff, max=backoff * MAX_BACKOFF_FACTOR)

    def wait(retry_state: RetryCallState) -> float:
        if retry_after:
            outcome = retry_state.outcome
            exc = outcome.exception() if outcome is not None else None
            if isinstance(exc, RateLimitError) and exc.retry_after is not None:
                return min(exc.retry_after, MAX_RETRY_AFTER)
        return fixed + float(jitter(retry_state))

    return wait


def uniform_wait(low: float, high: float) -> Wait:
    """A random wait between `low` and `high` seconds."""
    return tenacity.wait_random(low, high)


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


def retrying(
    retry_if: RequestKind | Predicate,
    *,
    wait: Wait,
    stats: ClientStats,
    attempts: int | None = None,
    deadline: float | None = None,
) -> AsyncRetrying:
    """A fresh tenacity controller for one call: another attempt after each failure `retry_if`
    (a kind's policy, or a predicate) allows, until `attempts` were made or, `deadline` seconds
    from now, the next wait would end past it (None: no such bound). Each retry is counted in
    `stats` and logged; the last failure is re-raised as it is."""
    stops: list[tenacity.stop.stop_base] = []
    if attempts is not None:
        stops.append(tenacity.stop_after_attempt(attempts))
    if deadline is not None:
        stops.append(tenacity.stop_before_delay(deadline))
    predicate = _PREDICATES[retry_if] if isinstance(retry_if, RequestKind) else retry_if
    return AsyncRetrying(
        retry=tenacity.retry_if_exception(predicate),
        wait=wait,
        stop=tenacity.stop_any(*stops) if stops else tenacity.stop_never,
        before_sleep=functools.partial(_log_retry, stats),
        reraise=True,
    )
