"""SQLiteStore: job records in one SQLite file, written off the event loop in group commits."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from ._exceptions import StoreError
from ._logging import logger
from ._models import TaskInfo
from ._store import DEFAULT_LEASE, SCHEMA, JobRecord, decode_record, encode_record

__all__ = ["SQLiteStore"]

_Op = Callable[[sqlite3.Connection], Any]

_TABLES = """
CREATE TABLE IF NOT EXISTS jobs (
    tag TEXT PRIMARY KEY, idempotency_key TEXT UNIQUE, task_id TEXT, owner TEXT NOT NULL,
    ended REAL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_task_id ON jobs (task_id);
CREATE TABLE IF NOT EXISTS leases (owner TEXT PRIMARY KEY, expires REAL NOT NULL);
"""


class SQLiteStore:
    """Records in one SQLite file (WAL): a record is committed before its submit is sent, so it
    survives SIGKILL (a power cut may lose the last commits). Several processes may share the
    file; claims are atomic. One worker thread does all the I/O, committing the operations that
    queued up meanwhile in one transaction."""

    def __init__(self, path: str | os.PathLike[str], *, lease: float = DEFAULT_LEASE) -> None:
        self.path = os.fspath(path)
        self.lease = lease
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._queue: list[tuple[_Op, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self._flushes = 0

    def __repr__(self) -> str:
        return f"<mjasync.SQLiteStore path={self.path!r}>"

    async def add(self, record: JobRecord) -> JobRecord:
        def add(db: sqlite3.Connection) -> JobRecord:
            key = record.idempotency_key
            if key is not None:
                row = db.execute("SELECT record FROM jobs WHERE idempotency_key = ?", (key,)).fetchone()
                if row is not None:
                    return decode_record(row[0])
            db.execute(
                "INSERT INTO jobs (tag, idempotency_key, task_id, owner, ended, record) VALUES (?,?,?,?,?,?)",
                (record.tag, key, record.task_id, record.owner, record.ended, encode_record(record)),
            )
            return record

        result: JobRecord = await self._run(add)
        return result

    async def get(self, tag: str) -> JobRecord | None:
        def get(db: sqlite3.Connection) -> JobRecord | None:
            row = db.execute("SELECT record FROM jobs WHERE tag = ?", (tag,)).fetchone()
            return None if row is None else decode_record(row[0])

        result: JobRecord | None = await self._run(get)
        return result

    async def set_sent(self, tag: str, *, sent_at: float, may_resend: bool) -> None:
        await self._run(lambda db: _change(db, tag, sent_at=sent_at, may_resend=may_resend))

    async def set_task_id(self, tag: str, task_id: str) -> None:
        await self._run(lambda db: _change(db, tag, task_id=task_id, body={}))

    async def finish(self, infos: Sequence[TaskInfo], at: float) -> None:
        def finish(db: sqlite3.Connection) -> None:
            for info in infos:
                for (tag,) in db.execute("SELECT tag FROM jobs WHERE task_id = ?", (info.id,)).fetchall():
                    _change(db, tag, final=info, ended=at)

        await self._run(finish)

    async def delete(self, tag: str) -> None:
        await self._run(lambda db: db.execute("DELETE FROM jobs WHERE tag = ?", (tag,)))

    async def forget(self, task_id: str) -> int:
        count: int = await self._run(
            lambda db: db.execute("DELETE FROM jobs WHERE task_id = ?", (task_id,)).rowcount
        )
        return count

    async def claim(self, owner: str) -> list[JobRecord]:
        def claim(db: sqlite3.Connection) -> list[JobRecord]:
            now = time.time()
            _lease(db, owner, now + self.lease)
            rows = db.execute(
                "SELECT tag, record FROM jobs WHERE owner = ? OR owner NOT IN "
                "(SELECT owner FROM leases WHERE expires > ?)",
                (owner, now),
            ).fetchall()
            claimed = []
            for tag, text in rows:
                try:
                    record = decode_record(text)
                except (ValueError, TypeError, KeyError) as exc:
                    logger.warning("skipping record %r of %s: it does not decode (%s)", tag, self.path, exc)
                    continue
                if record.owner != owner:
                    record = attrs.evolve(record, owner=owner)
                    sql = "UPDATE jobs SET owner = ?, record = ? WHERE tag = ?"
                    db.execute(sql, (owner, encode_record(record), tag))
                claimed.append(record)
            return claimed

        result: list[JobRecord] = await self._run(claim)
        return result

    async def renew(self, owner: str) -> None:
        await self._run(lambda db: _lease(db, owner, time.time() + self.lease))

    async def purge(self, ended_before: float) -> int:
        count: int = await self._run(
            lambda db: db.execute("DELETE FROM jobs WHERE ended < ?", (ended_before,)).rowcount
        )
        return count

    async def close(self) -> None:
        """Write what is queued, then close the file; the store cannot be used again."""
        self._closed = True
        if self._flusher is not None:
            await self._flusher
        if self._thread is not None:
            db, self._db = self._db, None
            if db is not None:
                await asyncio.get_running_loop().run_in_executor(self._thread, db.close)
            self._thread.shutdown(wait=True)
            self._thread = None

    async def _run(self, op: _Op) -> Any:
        """Queue one operation for the next group commit and wait for its result."""
        if self._closed:
            raise StoreError(f"the store {self.path} is closed")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self._queue.append((op, done))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mjasync-sqlite")
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                self._flushes += 1
                try:
                    outcomes = await loop.run_in_executor(self._thread, self._commit, [op for op, _ in batch])
                except (sqlite3.Error, OSError) as exc:
                    error = StoreError(f"the store {self.path} failed: {exc}")
                    error.__cause__ = exc
                    outcomes = [error] * len(batch)
                for (_, done), outcome in zip(batch, outcomes, strict=True):
                    if done.done():
                        continue
                    if isinstance(outcome, BaseException):
                        done.set_exception(outcome)
                    else:
                        done.set_result(outcome)
        finally:
            self._flusher = None

    def _commit(self, ops: list[_Op]) -> list[Any]:
        """On the worker thread: every op in one transaction, each in its own savepoint."""
        db = self._connect()
        outcomes: list[Any] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for op in ops:
                db.execute("SAVEPOINT op")
                try:
                    outcomes.append(op(db))
                    db.execute("RELEASE op")
                except (sqlite3.Error, ValueError, TypeError, KeyError) as exc:
                    db.execute("ROLLBACK TO op")
                    db.execute("RELEASE op")
                    error = StoreError(f"the store {self.path} failed: {exc}")
                    error.__cause__ = exc
                    outcomes.append(error)
            db.execute("COMMIT")
        except BaseException:
            db.rollback()
            raise
        return outcomes

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA:
                    raise sqlite3.DatabaseError(
                        f"schema version {version} was written by a newer mjasync (this one reads {SCHEMA})"
                    )
                db.executescript(_TABLES)
                db.execute(f"PRAGMA user_version = {SCHEMA}")
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db


def _lease(db: sqlite3.Connection, owner: str, expires: float) -> None:
    db.execute("INSERT OR REPLACE INTO leases (owner, expires) VALUES (?, ?)", (owner, expires))


def _change(db: sqlite3.Connection, tag: str, **changes: Any) -> None:
    """Rewrite one record (a forgotten one stays gone) and its indexed columns."""
    row = db.execute("SELECT record FROM jobs WHERE tag = ?", (tag,)).fetchone()
    if row is None:
        return
    record = attrs.evolve(decode_record(row[0]), **changes)
    db.execute(
        "UPDATE jobs SET task_id = ?, ended = ?, record = ? WHERE tag = ?",
        (record.task_id, record.ended, encode_record(record), tag),
    )
