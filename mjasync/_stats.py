"""ClientStats: the counters one client updates as it works (its copies keep their own)."""

from __future__ import annotations

import attrs

__all__ = ["ClientStats"]


@attrs.define
class ClientStats:
    """Counters of what one client did, for dashboards and summaries."""

    requests: int = 0
    """HTTP requests sent (each retry counts)."""
    retries: int = 0
    """Requests resent under a retry policy."""
    reconciles: int = 0
    """Submits whose outcome was unknown and were looked up by their state tag."""
    reconciled: int = 0
    """Of those, how many were found (adopted) instead of raising SubmitUncertainError."""
    found_later: int = 0
    """Jobs of uncertain or cancelled submits found by the background look-ups (see `find`)."""
    callbacks: int = 0
    """notifyHook callbacks accepted for tasks this client waits for."""
    resolved_by_callback: int = 0
    """Waits whose final status arrived through a callback (confirmed by one fetch)."""
    resolved_by_poll: int = 0
    """Waits whose final status arrived through polling or a fetch."""
