"""What a store keeps of each submit (`JobRecord`) and the small async interface every store has."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, Final, Protocol, runtime_checkable

import attrs

from ._convert import structure, unstructure
from ._models import TaskInfo

__all__ = ["DEFAULT_LEASE", "SCHEMA", "Bus", "JobRecord", "Store", "decode_record", "encode_record"]

DEFAULT_LEASE: Final = 30.0
"""Seconds a replica's claim on its records lasts unless renewed (a running client renews it)."""
SCHEMA: Final = 2
"""The record layout version; a store refuses one written by a newer mjasync."""


@attrs.frozen(kw_only=True)
class JobRecord:
    """One submit as a store keeps it: written before the request leaves, completed as the job
    goes on (task id on accept, final snapshot at the end), deleted on `forget()`."""

    tag: str
    """The SDK's state tag: the record's key, and the way to find the job when no id came back."""
    endpoint: str
    body: Mapping[str, Any]
    """The request body as sent, tag included, `notifyHook` left out (it carries a secret);
    emptied once the server accepted (only a resend needs it)."""
    meta: Mapping[str, Any]
    owner: str
    """The replica that follows this job."""
    created: float
    """Epoch seconds the record was written."""
    idempotency_key: str | None = None
    pressed: str | None = None
    """The customId whose press made the job (reads a MODAL it ends in)."""
    sent_at: float | None = None
    """Epoch seconds the last ambiguous send ended (the quiet period counts from here); None
    while the outcome of the first send is not known."""
    may_resend: bool = True
    """False after an answer that forbids a resend (code 9)."""
    task_id: str | None = None
    final: TaskInfo | None = None
    ended: float | None = None
    """Epoch seconds the final snapshot was stored, or the job forgotten (retention counts from
    here)."""
    forgotten: float | None = None
    """Epoch seconds the job was forgotten (handled): `claim` no longer takes it, and its
    idempotency key holds until the retention purge drops it."""


class Store(Protocol):
    """Where a Client keeps its job records. Every method may raise StoreError; all are safe to
    call from one event loop at a time, and a record that was forgotten never comes back."""

    lease: float
    """Seconds a replica's claim lasts without renewal."""

    async def add(self, record: JobRecord) -> JobRecord:
        """Write a new record, durably, before its submit is sent. When another record already
        holds its idempotency key, store nothing and return that one."""

    async def get(self, tag: str) -> JobRecord | None: ...

    async def set_sent(self, tag: str, *, sent_at: float, may_resend: bool) -> None:
        """An ambiguous send ended at `sent_at` (epoch seconds)."""

    def set_task_id(self, tag: str, task_id: str) -> Awaitable[None]:
        """The server accepted: keep the id, drop the body. The client does not hold the submit
        up for it (its own later reads and writes wait for it instead), so a store may return a
        future that is already under way, or a coroutine."""

    async def finish(self, infos: Sequence[TaskInfo], at: float) -> None:
        """Keep the final snapshot of every record whose task id is among `infos`."""

    async def delete(self, tag: str) -> None:
        """Drop one record (its submit provably created nothing)."""

    async def forget(self, name: str, at: float) -> int:
        """Mark handled, at `at` (epoch seconds), every record whose task id or tag is `name`:
        `claim` never takes them again, and they hold their idempotency keys until purged. How
        many were marked (already forgotten ones not counted)."""

    async def claim(self, owner: str) -> list[JobRecord]:
        """Atomically take every record not forgotten that `owner` or a replica whose lease
        expired owns, and renew `owner`'s lease. Two callers never both get one record."""

    async def renew(self, owner: str) -> None:
        """Extend `owner`'s lease by `lease` seconds from now."""

    async def purge(self, ended_before: float) -> int:
        """Drop records that ended before `ended_before` (epoch seconds); how many went."""

    async def close(self) -> None: ...


@runtime_checkable
class Bus(Protocol):
    """A store that also carries messages between the clients sharing it (replicas): a callback
    one of them received for a task another one follows."""

    async def publish(self, message: bytes) -> None:
        """Hand `message` to every subscriber of now (the publisher's own included); a client
        not subscribed at that moment never sees it."""

    def subscribe(self) -> AsyncIterator[bytes]:
        """The messages published from now on, until the iterator is closed. StoreError when
        the connection behind it fails (subscribe again to go on)."""


def encode_record(record: JobRecord) -> str:
    """A record as one JSON document (the final snapshot in its wire form)."""
    fields = attrs.asdict(record, recurse=False)
    fields["final"] = None if record.final is None else unstructure(record.final)
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def decode_record(text: str | bytes) -> JobRecord:
    """The record `encode_record` wrote; ValueError, TypeError or KeyError when it is not one."""
    fields = json.loads(text)
    if not isinstance(fields, dict):
        raise TypeError("a record is a JSON object")
    final = fields.pop("final", None)
    names = {field.name for field in attrs.fields(JobRecord)}
    record = JobRecord(**{key: value for key, value in fields.items() if key in names})
    if not (isinstance(record.tag, str) and isinstance(record.body, dict) and isinstance(record.meta, dict)):
        raise TypeError("a record needs a tag, a body and a meta object")
    return record if final is None else attrs.evolve(record, final=structure(final, TaskInfo))
