"""MemoryStore: the records of one process, in its memory (what a Client without `store=` uses)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

import attrs

from ._models import TaskInfo
from ._store import DEFAULT_LEASE, JobRecord

__all__ = ["MemoryStore"]


class MemoryStore:
    """Records kept in this process only: idempotency keys hold for the client's life, nothing
    survives a restart. Use SQLiteStore for that. Clients sharing one MemoryStore (replicas in
    one process) hand each other callbacks through it, as replicas do through a RedisStore."""

    def __init__(self, *, lease: float = DEFAULT_LEASE) -> None:
        self.lease = lease
        self._records: dict[str, JobRecord] = {}
        self._keys: dict[str, str] = {}
        self._ids: dict[str, set[str]] = {}
        self._leases: dict[str, float] = {}
        self._subscribers: set[asyncio.Queue[bytes]] = set()
        self._changes: dict[str, dict[str, Any]] = {}
        """Tag -> changes not applied to its record yet (see `_change`)."""

    def __repr__(self) -> str:
        return f"<mjasync.MemoryStore records={len(self._records)}>"

    def __len__(self) -> int:
        return len(self._records)

    async def add(self, record: JobRecord) -> JobRecord:
        key = record.idempotency_key
        if key is not None and key in self._keys:
            held = self._current(self._keys[key])
            assert held is not None, "a key names a record until the record goes"
            return held
        self._records[record.tag] = record
        if key is not None:
            self._keys[key] = record.tag
        return record

    async def get(self, tag: str) -> JobRecord | None:
        return self._current(tag)

    async def set_sent(self, tag: str, *, sent_at: float, may_resend: bool) -> None:
        self._change(tag, sent_at=sent_at, may_resend=may_resend)

    def set_task_id(self, tag: str, task_id: str) -> Awaitable[None]:
        if self._change(tag, task_id=task_id, body={}):
            self._ids.setdefault(task_id, set()).add(tag)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def finish(self, infos: Sequence[TaskInfo], at: float) -> None:
        for info in infos:
            for tag in self._ids.get(info.id, ()):
                self._change(tag, final=info, ended=at)

    async def delete(self, tag: str) -> None:
        record = self._current(tag)
        if record is None:
            return
        del self._records[tag]
        if record.idempotency_key is not None:
            self._keys.pop(record.idempotency_key, None)
        if record.task_id is not None:
            tags = self._ids.get(record.task_id, set())
            tags.discard(tag)
            if not tags:
                self._ids.pop(record.task_id, None)

    async def forget(self, name: str, at: float) -> int:
        tags = {*self._ids.get(name, ()), *((name,) if name in self._records else ())}
        marked = 0
        for tag in tags:
            record = self._current(tag)
            if record is not None and record.forgotten is None:
                self._change(tag, forgotten=at, ended=at if record.ended is None else record.ended)
                marked += 1
        return marked

    async def claim(self, owner: str) -> list[JobRecord]:
        now = time.time()
        self._leases[owner] = now + self.lease
        claimed = []
        for tag in list(self._records):
            record = self._current(tag)
            assert record is not None, "a tag of the records"
            if record.forgotten is not None:
                continue
            if record.owner != owner and self._leases.get(record.owner, 0.0) > now:
                continue
            if record.owner != owner:
                record = self._records[tag] = attrs.evolve(record, owner=owner)
            claimed.append(record)
        return claimed

    async def renew(self, owner: str) -> None:
        self._leases[owner] = time.time() + self.lease

    async def purge(self, ended_before: float) -> int:
        ended = ((tag, self._current(tag)) for tag in list(self._records))
        old = [tag for tag, r in ended if r is not None and r.ended is not None and r.ended < ended_before]
        for tag in old:
            await self.delete(tag)
        return len(old)

    async def publish(self, message: bytes) -> None:
        for queue in self._subscribers:
            queue.put_nowait(message)

    async def subscribe(self) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    async def close(self) -> None:
        """Nothing to release: the records live as long as this object."""

    def _change(self, tag: str, **changes: object) -> bool:
        """Note changes to a record; they are applied when it is next read (a write is on every
        submit's path, a read seldom is). False when the record is gone: it must not come back."""
        if tag not in self._records:
            return False
        self._changes.setdefault(tag, {}).update(changes)
        return True

    def _current(self, tag: str) -> JobRecord | None:
        record = self._records.get(tag)
        if record is not None and tag in self._changes:
            record = self._records[tag] = attrs.evolve(record, **self._changes.pop(tag))
        return record
