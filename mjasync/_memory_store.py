"""MemoryStore: the records of one process, in its memory (what a Client without `store=` uses)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import attrs

from ._models import TaskInfo
from ._store import DEFAULT_LEASE, JobRecord

__all__ = ["MemoryStore"]


class MemoryStore:
    """Records kept in this process only: idempotency keys hold for the client's life, nothing
    survives a restart. Use SQLiteStore for that."""

    def __init__(self, *, lease: float = DEFAULT_LEASE) -> None:
        self.lease = lease
        self._records: dict[str, JobRecord] = {}
        self._keys: dict[str, str] = {}
        self._ids: dict[str, set[str]] = {}
        self._leases: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"<mjasync.MemoryStore records={len(self._records)}>"

    def __len__(self) -> int:
        return len(self._records)

    async def add(self, record: JobRecord) -> JobRecord:
        key = record.idempotency_key
        if key is not None and key in self._keys:
            return self._records[self._keys[key]]
        self._records[record.tag] = record
        if key is not None:
            self._keys[key] = record.tag
        return record

    async def get(self, tag: str) -> JobRecord | None:
        return self._records.get(tag)

    async def set_sent(self, tag: str, *, sent_at: float, may_resend: bool) -> None:
        self._change(tag, sent_at=sent_at, may_resend=may_resend)

    async def set_task_id(self, tag: str, task_id: str) -> None:
        if self._change(tag, task_id=task_id, body={}):
            self._ids.setdefault(task_id, set()).add(tag)

    async def finish(self, infos: Sequence[TaskInfo], at: float) -> None:
        for info in infos:
            for tag in self._ids.get(info.id, ()):
                self._change(tag, final=info, ended=at)

    async def delete(self, tag: str) -> None:
        record = self._records.pop(tag, None)
        if record is None:
            return
        if record.idempotency_key is not None:
            self._keys.pop(record.idempotency_key, None)
        if record.task_id is not None:
            tags = self._ids.get(record.task_id, set())
            tags.discard(tag)
            if not tags:
                self._ids.pop(record.task_id, None)

    async def forget(self, task_id: str) -> int:
        tags = list(self._ids.get(task_id, ()))
        for tag in tags:
            await self.delete(tag)
        return len(tags)

    async def claim(self, owner: str) -> list[JobRecord]:
        now = time.time()
        self._leases[owner] = now + self.lease
        claimed = []
        for tag, record in self._records.items():
            if record.owner != owner and self._leases.get(record.owner, 0.0) > now:
                continue
            if record.owner != owner:
                record = self._records[tag] = attrs.evolve(record, owner=owner)
            claimed.append(record)
        return claimed

    async def renew(self, owner: str) -> None:
        self._leases[owner] = time.time() + self.lease

    async def purge(self, ended_before: float) -> int:
        old = [tag for tag, r in self._records.items() if r.ended is not None and r.ended < ended_before]
        for tag in old:
            await self.delete(tag)
        return len(old)

    async def close(self) -> None:
        """Nothing to release: the records live as long as this object."""

    def _change(self, tag: str, **changes: object) -> bool:
        record = self._records.get(tag)
        if record is None:
            return False  # forgotten: it must not come back
        self._records[tag] = attrs.evolve(record, **changes)  # type: ignore[arg-type]
        return True
