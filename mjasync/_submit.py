"""Submit safety: tag every submit, never resend an ambiguous one, find it by its tag instead."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from ._classify import endpoint_missing
from ._convert import join_state
from ._decode import accepted_envelope, tasks_tagged
from ._exceptions import APIError, MjError, SubmitUncertainError
from ._logging import logger
from ._models import SubmitResult, TaskInfo
from ._retry import RequestKind
from ._transport import Transport

__all__ = ["ReconcileStrategy", "Submitter", "new_tag"]

ReconcileStrategy = Literal["auto", "plus-query", "list-scan", "none"]
MAX_RESENDS: Final = 1
"""Times a submit is sent again after a complete look-up proved its job was never created
(protocol.md section 13: once, with the same tag, so a late duplicate stays detectable)."""


def new_tag() -> str:
    """A unique submit tag: the only way to find a job whose id never arrived."""
    return f"mja-{uuid.uuid4().hex}"


def _is_ambiguous(exc: BaseException) -> bool:
    return isinstance(exc, APIError) and exc.job_created is None


class Submitter:
    """Sends submits under the SUBMIT policy and reconciles ambiguous failures by state tag."""

    def __init__(
        self,
        transport: Transport,
        *,
        strategy: ReconcileStrategy,
        delays: Sequence[float],
    ) -> None:
        self._transport = transport
        self._strategy = strategy
        self._delays = tuple(delays)
        self._lookup: str | None = None if strategy == "auto" else strategy

    async def submit(
        self, path: str, body: dict[str, Any], *, state: str | None, timeout: float | None
    ) -> SubmitResult:
        """Submit (resending only what provably created nothing); returns an accepted result.

        After an ambiguous failure the tag is looked up; a job found is adopted. Only when a
        complete view shows no such job is the same body (same tag) sent again, at most
        MAX_RESENDS times. Otherwise SubmitUncertainError: nothing is ever sent blind.
        """
        tag = new_tag()
        body["state"] = join_state(state, tag)
        stats = self._transport.stats
        sends = 0
        for resend in range(MAX_RESENDS + 1):
            sends += 1
            try:
                return await self._send(path, body, timeout)
            except APIError as exc:
                if not _is_ambiguous(exc):
                    raise
                cause: BaseException = exc
            logger.info("POST %s: outcome unknown (%s); looking for tag %s", path, type(cause).__name__, tag)
            stats.reconciles += 1
            try:
                found, complete = await self._find(tag)
            except MjError as exc:  # the client was closed, or is used from another loop
                cause = exc
                break
            if found is not None:
                stats.reconciled += 1
                return found
            if not complete:
                break
            if resend < MAX_RESENDS:
                logger.info("POST %s: tag %s is in no task of a complete view; sending again", path, tag)
        raise SubmitUncertainError(
            f"POST {path}: the server may have created this job ({type(cause).__name__}), "
            f"and no task with state tag {tag} could be found; sent {sends} time(s), never blind",
            state_tag=tag,
            path=path,
            cause=cause,
        ) from cause

    async def _send(self, path: str, body: Mapping[str, Any], timeout: float | None) -> SubmitResult:
        return await self._transport.request(
            "POST", path, accepted_envelope, body=body, kind=RequestKind.SUBMIT, timeout=timeout
        )

    async def _find(self, tag: str) -> tuple[SubmitResult | None, bool]:
        """Look the tag up after each delay: (the adopted result or None, was the view complete)."""
        complete = False
        for delay in self._delays:
            if self._lookup == "none":
                break
            await asyncio.sleep(delay)
            tasks, complete = await self._lookup_tag(tag)
            if tasks:
                chosen = min(tasks, key=lambda t: (t.submit_time is None, t.submit_time, t.id))
                if len(tasks) > 1:
                    logger.warning(
                        "tag %s matches %d tasks (%s); adopting the oldest, %s",
                        tag, len(tasks), ", ".join(t.id for t in tasks), chosen.id,
                    )
                logger.info("tag %s found: adopting task %s", tag, chosen.id)
                return SubmitResult(code=1, description="found by state tag", result=chosen.id), True
        return None, complete

    async def _lookup_tag(self, tag: str) -> tuple[list[TaskInfo], bool]:
        """Tasks carrying the tag, and whether the view searched was complete."""
        if self._lookup in (None, "plus-query"):
            try:
                # A view counts only when it is a list of tasks: an empty or odd answer proves
                # nothing, and taking it for "not found" would send the job again.
                answer = await self._transport.request(
                    "POST", "/mj/task/query", tasks_tagged(tag), body={"state": tag}
                )
                self._lookup = "plus-query"
                return _with_tag(answer, tag), True
            except APIError as exc:
                if not endpoint_missing(exc) or self._strategy == "plus-query":
                    return [], False
                self._lookup = "list-scan"
        if self._lookup == "list-scan":
            found: dict[str, TaskInfo] = {}
            views = 0
            for path in ("/mj/task/list", "/mj/task/queue"):
                try:
                    answer = await self._transport.request("GET", path, tasks_tagged(tag))
                    found.update((task.id, task) for task in _with_tag(answer, tag))
                    views += 1
                except APIError as exc:
                    if not endpoint_missing(exc):
                        return list(found.values()), False
            if views == 0 and self._strategy == "auto":
                self._lookup = "none"
            return list(found.values()), views == 2
        return [], False


def _with_tag(tasks: list[TaskInfo], tag: str) -> list[TaskInfo]:
    return [info for info in tasks if info.state_tag == tag]
