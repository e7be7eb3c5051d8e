"""A Client's settings as one frozen value, checked in one place."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Final, TypedDict
from urllib.parse import urlsplit

import attrs

from . import _validate as check
from ._exceptions import InvalidRequestError
from ._logging import redact_url, register_secret
from ._lookup import ReconcileStrategy
from ._submit import DEFAULT_RESEND_AFTER
from ._transport import AuthStyle, Config

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT", "DEFAULT_MAX_RETRIES", "DEFAULT_POLL_INTERVAL", "DEFAULT_TIMEOUT",
    "ClientOptions", "Overrides", "evolved",
]

DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_MAX_RETRIES: Final = 2
DEFAULT_POLL_INTERVAL: Final = 2.0


def _base_url(value: str | None) -> str:
    return value or os.environ.get("MJASYNC_BASE_URL") or ""


def _api_key(value: str | None) -> str | None:
    value = value if value is not None else os.environ.get("MJASYNC_API_KEY")
    # From here on the key is a secret string: `***` in any repr, traceback locals included.
    return register_secret(value) if value else None


def _delays(values: Iterable[float]) -> tuple[float, ...]:
    return tuple(values)


@attrs.frozen(kw_only=True)
class ClientOptions:
    """A Client's settings (`client.options`): `Client(...)` checks them once, `with_options()`
    makes a checked copy. The fields are the `Client` constructor's options, `session` aside."""

    base_url: str = attrs.field(converter=_base_url)
    """The server, keeping any path before `/mj`; None or empty means `MJASYNC_BASE_URL`."""
    api_key: str | None = attrs.field(repr=False, converter=_api_key)
    """None means `MJASYNC_API_KEY` (and no key when that is unset too)."""
    auth: AuthStyle
    mode: str | None
    timeout: float
    connect_timeout: float
    max_retries: int
    retry_backoff: float
    poll_interval: float
    poll_batch_size: int
    missing_after: float
    reconcile: ReconcileStrategy
    reconcile_delays: tuple[float, ...] = attrs.field(converter=_delays)
    resend_after: float | None = DEFAULT_RESEND_AFTER
    """Seconds an ambiguous submit's tag must be absent from every complete view before it is
    sent again (once, same tag); None: never sent again."""
    verify_tls: bool

    def __attrs_post_init__(self) -> None:
        base_url = self.base_url
        if not base_url:
            raise InvalidRequestError("base_url is required: pass base_url= or set MJASYNC_BASE_URL")
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).hostname:
            raise InvalidRequestError(f"base_url must be an http(s) URL, got {redact_url(base_url)!r}")
        check.choice(self.auth, check.AUTH_STYLES, "auth")
        check.choice(self.reconcile, check.RECONCILE_STRATEGIES, "reconcile")
        for name in ("timeout", "connect_timeout", "poll_interval"):
            check.timeout(getattr(self, name), name)
        for name, value in (
            ("retry_backoff", self.retry_backoff),
            ("missing_after", self.missing_after),
            *((f"reconcile_delays[{i}]", d) for i, d in enumerate(self.reconcile_delays)),
        ):
            check.timeout(value, name, zero=True)
        if self.resend_after is not None:
            check.timeout(self.resend_after, "resend_after", zero=True)
        check.at_least(self.max_retries, 0, "max_retries")
        batch = self.poll_batch_size
        if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 1000:
            raise InvalidRequestError(f"poll_batch_size must be 1..1000, got {self.poll_batch_size!r}")

    def config(self) -> Config:
        """What the Transport needs of these settings."""
        return Config(
            base_url=self.base_url,
            api_key=self.api_key,
            auth=self.auth,
            mode=self.mode,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            max_retries=self.max_retries,
            retry_backoff=self.retry_backoff,
        )


class Overrides(TypedDict, total=False):
    """What `Client.with_options()` may change: every option a copy sharing the session honours."""

    base_url: str | None
    api_key: str | None
    auth: AuthStyle
    mode: str | None
    timeout: float
    connect_timeout: float
    max_retries: int
    retry_backoff: float
    poll_interval: float
    poll_batch_size: int
    missing_after: float
    reconcile: ReconcileStrategy
    reconcile_delays: Sequence[float]
    resend_after: float | None


_SESSION_BOUND: Final = ("session", "verify_tls")
"""Options fixed by the shared session: a copy cannot honour another value."""


def evolved(options: ClientOptions, overrides: Overrides) -> ClientOptions:
    """`options` with `overrides` applied and checked again (InvalidRequestError for an unknown
    option, or one the shared session fixes)."""
    for name in overrides:
        if name in _SESSION_BOUND:
            raise InvalidRequestError(
                f"with_options() shares the session, so it cannot take {name}=; build a new Client for that"
            )
        if name not in Overrides.__optional_keys__:
            raise InvalidRequestError(f"with_options() got an unknown option {name!r}")
    return attrs.evolve(options, **overrides)
