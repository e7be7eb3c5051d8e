"""Submit safety: tag every submit, never resend an ambiguous one blind, find it by its tag instead."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Final

import attrs

from ._convert import join_state
from ._decode import accepted_envelope
from ._endpoints import optional
from ._exceptions import APIError, MjError, ProxyResultError, StoreError, SubmitUncertainError
from ._jobs import Jobs
from ._logging import logger
from ._lookup import Lookups, ReconcileStrategy
from ._models import SubmitResult, TaskInfo
from ._retry import RequestKind
from ._store import JobRecord
from ._transport import Transport

__all__ = ["DEFAULT_RESEND_AFTER", "Job", "Submitter"]

DEFAULT_RESEND_AFTER: Final = 120.0
"""Seconds an ambiguous submit's tag must be absent from every complete view since its last send
before it is sent again (same tag): no server guarantees that a job absent now stays absent."""
WATCH_FOR: Final = 600.0
"""Seconds the background keeps looking after an uncertain or cancelled submit's last send, past
`resend_after`."""
MAX_LOOK_INTERVAL: Final = 10.0
"""The background look-ups start at the last reconcile delay and double up to this."""
MAX_FOUND: Final = 10_000
"""Tags whose reconciled job is kept for `find` (the oldest are forgotten first)."""


def new_tag() -> str:
    """A unique submit tag: the only way to find a job whose id never arrived."""
    return f"mja-{os.urandom(16).hex()}"


def _is_ambiguous(exc: BaseException) -> bool:
    return isinstance(exc, APIError) and exc.job_created is None


@attrs.frozen
class Job:
    """What a submit (or `resume`) hands back: the accepted envelope and the job's record."""

    result: SubmitResult
    record: JobRecord

    @property
    def task_id(self) -> str:
        assert isinstance(self.result.result, str), "an accepted result carries the task id"
        return self.result.result


@attrs.define
class _Pending:
    """One submit whose outcome is not known yet: what was sent, and what the look-ups saw."""

    tag: str
    wire_state: str
    path: str
    body: dict[str, Any]
    timeout: float | None
    sent_at: float = 0.0
    """Loop time the last send ended (the quiet period counts from here)."""
    may_resend: bool = True
    """False once a view was partial, after a code 9, or when its caller cancelled the submit."""


class Submitter:
    """Sends submits under the SUBMIT policy and reconciles ambiguous ones by state tag, in the
    foreground (the reconcile delays) and then in the background (see `find`)."""

    def __init__(
        self,
        transport: Transport,
        *,
        strategy: ReconcileStrategy,
        delays: Sequence[float],
        resend_after: float | None = DEFAULT_RESEND_AFTER,
        jobs: Jobs,
    ) -> None:
        self._transport = transport
        self._jobs = jobs
        self._store = jobs.store
        self._owner = jobs.owner
        self._lookups = Lookups(transport, strategy)
        self._delays = tuple(delays)
        self._resend_after = resend_after
        self._found: dict[str, SubmitResult] = {}
        self._sent: dict[str, str] = {}
        """tag -> wire state of the submits still being looked for (the plus query needs it)."""
        self._watchers: set[asyncio.Task[None]] = set()
        self._in_flight: dict[str, asyncio.Future[SubmitResult]] = {}
        """tag -> outcome of this submitter's keyed submits still being sent."""

    async def submit(
        self,
        path: str,
        body: dict[str, Any],
        *,
        state: str | None,
        timeout: float | None,
        meta: Mapping[str, Any],
        key: str | None = None,
        pressed: str | None = None,
    ) -> Job:
        """Submit (resending only what provably created nothing); returns an accepted result.

        After an ambiguous failure the tag is looked up; a job found is adopted. The same body
        (same tag) is sent again only when the tag was absent from every complete view for
        `resend_after` seconds since the last send. Otherwise SubmitUncertainError, and the
        look-ups go on in the background; a cancelled submit is looked for there too.
        """
        tag = new_tag()
        pending = _Pending(tag, join_state(state, tag), path, body, timeout)
        body["state"] = pending.wire_state
        record = JobRecord(
            tag=tag, endpoint=path, body={k: v for k, v in body.items() if k != "notifyHook"},
            meta=meta, owner=self._owner, created=time.time(), idempotency_key=key, pressed=pressed,
        )
        held = await self._store.add(record)  # StoreError here: nothing was sent
        if held.tag != tag:
            return Job(await self._settle(held), held)
        outcome: asyncio.Future[SubmitResult] | None = None
        if key is not None:
            outcome = self._in_flight[tag] = asyncio.get_running_loop().create_future()
        try:
            result = await self._foreground(pending)
        except asyncio.CancelledError:
            logger.warning(
                "POST %s cancelled after it may have been sent; looking for tag %s in the background",
                path, tag, extra={"state_tag": tag},
            )
            pending.sent_at = asyncio.get_running_loop().time()
            pending.may_resend = False  # its caller gave up: find what it made, send nothing more
            self._watch(pending)
            raise
        except BaseException as exc:
            if outcome is not None:
                outcome.set_exception(exc)
                outcome.exception()  # a caller with the same key may never ask
            raise
        finally:
            self._in_flight.pop(tag, None)
        if outcome is not None:
            outcome.set_result(result)
        return Job(result, record)

    async def _settle(self, held: JobRecord) -> SubmitResult:
        """The job of a record that already holds the key: its id, the outcome of the submit
        still being sent here, or what the look-ups find (SubmitUncertainError if nothing)."""
        tag = held.tag
        logger.info("idempotency key already used by tag %s: nothing sent", tag)
        if held.task_id is not None:
            return SubmitResult(code=1, description="idempotency key already used", result=held.task_id)
        outcome = self._in_flight.get(tag)
        if outcome is not None:
            return await asyncio.shield(outcome)
        for delay in (0.0, *self._delays):
            await asyncio.sleep(delay)
            record = await self._store.get(tag)
            if record is not None and record.task_id is not None:
                return SubmitResult(code=1, description="idempotency key already used", result=record.task_id)
            tasks, _ = await self._lookups.find(tag, str(held.body.get("state", tag)))
            if tasks:
                return self._accepted(tag, self._adopt(tag, tasks))
        raise SubmitUncertainError(
            f"POST {held.endpoint}: an earlier submit with this idempotency key (state tag {tag}) "
            "may have created a job, and none carrying its tag was found yet; nothing sent",
            state_tag=tag, path=held.endpoint, cause=StoreError("the record has no task id"),
        )

    async def resume(self, records: Sequence[JobRecord], hook: str | None) -> list[Job]:
        """The jobs of claimed records: a stored task id as it is; a record without one settled by
        `reconcile` (all of them in shared look-up rounds). Records that stay open are left out.
        When a resend is refused, the others are still settled and the first error is raised."""

        async def settle(record: JobRecord) -> Job | None:
            if record.task_id is not None:
                return Job(SubmitResult(code=1, description="resumed", result=record.task_id), record)
            with optional(record.endpoint):
                return await self.reconcile(record, hook)

        outcomes = await asyncio.gather(*(settle(record) for record in records), return_exceptions=True)
        jobs: list[Job] = []
        errors: list[BaseException] = []
        for record, outcome in zip(records, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                logger.warning(
                    "resume: the job of tag %s (meta %r) was not settled: %s",
                    record.tag, dict(record.meta), outcome, extra={"state_tag": record.tag},
                )
                errors.append(outcome)
            elif outcome is not None:
                jobs.append(outcome)
        if errors:
            raise errors[0]  # the jobs settled are not followed yet: the next resume() returns them
        return jobs

    async def reconcile(self, record: JobRecord, hook: str | None) -> Job | None:
        """Settle a record without a task id (from `resume`) by the rules of a live submit
        (`_step`); None while it stays open for a later call."""
        body = dict(record.body)
        if hook is not None:
            body["notifyHook"] = hook
        ended = record.sent_at if record.sent_at is not None else record.created
        pending = _Pending(
            record.tag, str(record.body.get("state", record.tag)), record.endpoint, body, None,
            sent_at=asyncio.get_running_loop().time() - (time.time() - ended), may_resend=record.may_resend,
        )
        result = await self._step(pending)
        return None if result is None else Job(result, record)

    def _accepted(self, tag: str, result: SubmitResult) -> SubmitResult:
        """Keep the task id with the record, without holding up the caller (`Jobs.later`). The
        job exists whatever happens to that write, so a failure is logged, not raised: the
        record keeps its tag, and `resume()` finds the job."""
        self._remember(tag, result)
        self._jobs.later(self._store.set_task_id(tag, str(result.result)), tag)
        return result

    async def _mark_sent(self, tag: str, *, may_resend: bool) -> None:
        await self._after_send(self._store.set_sent(tag, sent_at=time.time(), may_resend=may_resend), tag)

    async def _after_send(self, write: Awaitable[None], tag: str) -> None:
        """A record write after the request left: a failure cannot unsend it, so it is logged
        and the record keeps what it had (at worst its tag, which `resume()` settles)."""
        try:
            await write
        except StoreError as exc:
            logger.warning("the record of tag %s was not updated: %s", tag, exc)

    async def find(self, tag: str) -> SubmitResult | None:
        """The job carrying `tag`: one found before, else one look-up now (None: not seen)."""
        if tag in self._found:
            return self._found[tag]
        tasks, _ = await self._lookups.find(tag, self._sent.get(tag, tag))
        return self._accepted(tag, self._adopt(tag, tasks)) if tasks else None

    async def close(self) -> None:
        """Stop the background look-ups."""
        for watcher in list(self._watchers):
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        await self._lookups.close()

    async def _foreground(self, pending: _Pending) -> SubmitResult:
        path, tag = pending.path, pending.tag
        stats = self._transport.stats
        try:
            return self._accepted(tag, await self._send(pending))
        except APIError as exc:
            if not _is_ambiguous(exc):
                await self._after_send(self._store.delete(tag), tag)  # refused: nothing was created
                raise
            cause: BaseException = exc
            pending.may_resend = not (isinstance(exc, ProxyResultError) and exc.code == 9)
        pending.sent_at = asyncio.get_running_loop().time()
        await self._mark_sent(tag, may_resend=pending.may_resend)
        logger.info("POST %s: outcome unknown (%s); looking for tag %s", path, type(cause).__name__, tag)
        stats.reconciles += 1
        self._sent[tag] = pending.wire_state
        try:
            for delay in self._delays:
                await asyncio.sleep(delay)
                found = await self._step(pending)
                if found is not None:
                    stats.reconciled += 1
                    return found
        except MjError as exc:  # the client was closed, or is used from another loop
            cause = exc
            self._sent.pop(tag, None)
        else:
            self._watch(pending)
        raise SubmitUncertainError(
            f"POST {path}: the server may have created this job ({type(cause).__name__}), and no task "
            f"with state tag {tag} was found yet; not sent again (the client keeps looking: find(tag))",
            state_tag=tag,
            path=path,
            cause=cause,
        ) from cause

    async def _send(self, pending: _Pending) -> SubmitResult:
        return await self._transport.request(
            "POST", pending.path, accepted_envelope, body=pending.body, kind=RequestKind.SUBMIT,
            timeout=pending.timeout,
        )

    async def _step(self, pending: _Pending) -> SubmitResult | None:
        """One look-up; a job found is the result. Absent from every complete view for a quiet
        period since its last send, it is sent again (same tag, so a late duplicate stays
        detectable), as often as the sends stay ambiguous. None while the outcome is unknown."""
        loop = asyncio.get_running_loop()
        tasks, complete = await self._lookups.find(pending.tag, pending.wire_state)
        if tasks:
            return self._accepted(pending.tag, self._adopt(pending.tag, tasks))
        if not complete:
            pending.may_resend = False
        quiet = self._resend_after is not None and loop.time() - pending.sent_at >= self._resend_after
        if not (pending.may_resend and quiet):
            return None
        logger.info(
            "POST %s: tag %s absent from every complete view for %.1f s; sending again (same tag)",
            pending.path, pending.tag, loop.time() - pending.sent_at,
        )
        await self._mark_sent(pending.tag, may_resend=True)  # killed mid-send: the quiet period restarts
        try:
            result = await self._send(pending)
        except APIError as exc:
            if not _is_ambiguous(exc):
                if exc.job_created is False:
                    await self._after_send(self._store.delete(pending.tag), pending.tag)
                raise
            pending.sent_at = loop.time()
            await self._mark_sent(pending.tag, may_resend=True)
            return None
        return self._accepted(pending.tag, result)

    def _watch(self, pending: _Pending) -> None:
        """Keep looking for the tag in the background; a job found is logged, counted and kept."""
        if not self._lookups.enabled:
            return
        self._sent[pending.tag] = pending.wire_state
        watcher = asyncio.get_running_loop().create_task(self._watch_until_found(pending))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch_until_found(self, pending: _Pending) -> None:
        loop = asyncio.get_running_loop()
        tag = pending.tag
        interval = max(self._delays[-1] if self._delays else 1.0, 0.01)
        try:
            while loop.time() < pending.sent_at + (self._resend_after or 0.0) + WATCH_FOR:
                await asyncio.sleep(interval)
                interval = min(interval * 2, MAX_LOOK_INTERVAL)
                found = await self._step(pending)
                if found is not None:
                    assert isinstance(found.result, str)
                    self._transport.stats.found_later += 1
                    logger.warning(
                        "POST %s: task %s carries tag %s (its caller was not told): find(tag) returns it",
                        pending.path, found.result, tag, extra={"state_tag": tag, "task_id": found.result},
                    )
                    return
            logger.warning("POST %s: tag %s not found; stopped looking (resume() goes on)", pending.path, tag)
        except MjError as exc:
            logger.warning("POST %s: stopped looking for tag %s (%s)", pending.path, tag, type(exc).__name__)
        finally:
            self._sent.pop(tag, None)

    def _adopt(self, tag: str, tasks: list[TaskInfo]) -> SubmitResult:
        chosen = min(tasks, key=lambda t: (t.submit_time is None, t.submit_time, t.id))
        if len(tasks) > 1:
            logger.warning(
                "tag %s matches %d tasks (%s); adopting the oldest, %s",
                tag, len(tasks), ", ".join(t.id for t in tasks), chosen.id,
            )
        logger.info("tag %s found: adopting task %s", tag, chosen.id)
        return SubmitResult(code=1, description="found by state tag", result=chosen.id)

    def _remember(self, tag: str, result: SubmitResult) -> None:
        self._sent.pop(tag, None)
        self._found[tag] = result
        if len(self._found) > MAX_FOUND:
            del self._found[next(iter(self._found))]
