"""SQLiteStore: job records in one SQLite file, shared by every process (replica) that opens it."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from typing import Any, Final, TypeVar

import attrs

from ._exceptions import StoreError
from ._logging import logger
from ._models import TaskInfo
from ._store import DEFAULT_LEASE, SCHEMA, JobRecord, decode_record, encode_record

__all__ = ["SQLiteStore"]

T = TypeVar("T")
_Op = Callable[[sqlite3.Connection], Any]
_Outcome = tuple[Any, StoreError | None]
"""What one operation of a batch gave: its result, or the error it raised."""

_BUSY_TIMEOUT: Final = 10.0
"""Seconds a process waits for another one's write to end before it gives up."""
_TABLES: Final = (
    "CREATE TABLE IF NOT EXISTS jobs (tag TEXT PRIMARY KEY, idempotency_key TEXT UNIQUE,"
    " task_id TEXT, owner TEXT, ended REAL, forgotten REAL, record TEXT)",
    "CREATE INDEX IF NOT EXISTS jobs_task_id ON jobs (task_id)",
    "CREATE TABLE IF NOT EXISTS leases (owner TEXT PRIMARY KEY, expires REAL)",
)
_GATHER_ROUNDS: Final = 2
"""Event loop iterations a transaction waits for more operations before it starts."""
_COLUMNS: Final = "idempotency_key = ?, task_id = ?, owner = ?, ended = ?, forgotten = ?, record = ?"


class SQLiteStore:
    """Records in a SQLite file: they survive restarts, and replicas on one machine share them
    (claims are atomic across processes). WAL journal with synchronous=NORMAL: a committed
    record survives the process being killed; a power loss may lose the last commits.

    All file work runs on one worker thread, off the event loop; operations asked for while a
    transaction runs are committed together in the next one (group commit). The file is opened
    on first use.
    """

    def __init__(self, path: str | os.PathLike[str], *, lease: float = DEFAULT_LEASE) -> None:
        self.path = os.fspath(path)
        self.lease = lease
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        """Opened, used and closed on the worker thread only."""
        self._queue: list[tuple[_Op, asyncio.Future[Any]]] = []
        """Operations waiting for the next transaction (touched on the event loop only)."""
        self._busy = False
        """A transaction is scheduled or running; new operations wait for the next one."""
        self._flushes = 0
        """Transactions started (a batch each)."""
        self._closed = False
        self._closing: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<mjasync.SQLiteStore path={self.path!r}{' closed' if self._closed else ''}>"

    async def add(self, record: JobRecord) -> JobRecord:
        return await self._call(partial(self._add, record))

    async def get(self, tag: str) -> JobRecord | None:
        return await self._call(partial(self._get, tag))

    async def set_sent(self, tag: str, *, sent_at: float, may_resend: bool) -> None:
        sql = (
            "UPDATE jobs SET record = json_set(record, '$.sent_at', json(?), '$.may_resend', json(?))"
            " WHERE tag = ?"
        )
        await self._call(partial(_execute, sql, (_json(sent_at), _json(may_resend), tag)))

    def set_task_id(self, tag: str, task_id: str) -> asyncio.Future[Any]:
        sql = (
            "UPDATE jobs SET task_id = ?, record = json_set(record, '$.task_id', ?, '$.body', json('{}'))"
            " WHERE tag = ?"
        )
        return self._ask(partial(_execute, sql, (task_id, task_id, tag)))

    async def finish(self, infos: Sequence[TaskInfo], at: float) -> None:
        await self._call(partial(self._finish, list(infos), at))

    async def delete(self, tag: str) -> None:
        await self._call(partial(_execute, "DELETE FROM jobs WHERE tag = ?", (tag,)))

    async def forget(self, name: str, at: float) -> int:
        return await self._call(partial(self._forget, name, at))

    async def claim(self, owner: str) -> list[JobRecord]:
        return await self._call(partial(self._claim, owner))

    async def renew(self, owner: str) -> None:
        await self._call(partial(self._renew, owner))

    async def purge(self, ended_before: float) -> int:
        sql = "DELETE FROM jobs WHERE ended IS NOT NULL AND ended < ?"
        return await self._call(partial(_execute, sql, (ended_before,)))

    async def close(self) -> None:
        """Finish the work already asked for, then close the file; using the store afterwards
        raises StoreError. Calling it again does nothing."""
        self._closed = True
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._closing)

    # -- the batching: event loop side ---------------------------------------------------------

    async def _call(self, op: Callable[[sqlite3.Connection], T]) -> T:
        result: T = await self._ask(op)
        return result

    def _ask(self, op: _Op) -> asyncio.Future[Any]:
        """`_enqueue`, or a StoreError once the store is closed."""
        if not self._closed:
            return self._enqueue(op)
        refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        refused.set_exception(StoreError(f"SQLite store {self.path} is closed"))
        return refused

    def _enqueue(self, op: _Op) -> asyncio.Future[Any]:
        """Queue `op` for the next transaction; its future gets the result or the StoreError."""
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mjasync-sqlite")
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((op, future))
        if not self._busy:
            self._busy = True
            loop.call_soon(self._flush, loop, _GATHER_ROUNDS)
        return future

    def _flush(self, loop: asyncio.AbstractEventLoop, rounds: int) -> None:
        """Start the next transaction, `rounds` loop iterations from now: what the other tasks
        ask for meanwhile joins it (fewer, larger batches: each costs a thread hand-off)."""
        if rounds > 0:
            loop.call_soon(self._flush, loop, rounds - 1)
            return
        batch, self._queue = self._queue, []
        self._flushes += 1
        done = loop.run_in_executor(self._executor, self._run_batch, [op for op, _ in batch])
        done.add_done_callback(partial(self._deliver, loop, [future for _, future in batch]))

    def _deliver(
        self, loop: asyncio.AbstractEventLoop, futures: list[asyncio.Future[Any]], done: asyncio.Future[Any]
    ) -> None:
        try:
            outcomes: list[_Outcome] = done.result()
        except Exception as exc:  # not expected: _run_batch reports every failure in its outcomes
            outcomes = [(None, self._error(exc)) for _ in futures]
        for future, (result, error) in zip(futures, outcomes, strict=True):
            if future.done():  # its caller was cancelled (the operation still happened)
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
        if self._queue:
            self._flush(loop, _GATHER_ROUNDS)
        else:
            self._busy = False

    async def _shutdown(self) -> None:
        executor = self._executor
        if executor is None:
            return  # never used: nothing was opened
        with suppress(StoreError):
            await self._enqueue(_nothing)  # runs after everything asked before close()
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=False)

    # -- the worker thread ----------------------------------------------------------------------

    def _run_batch(self, ops: list[_Op]) -> list[_Outcome]:
        """One transaction for the whole batch. An operation that raises is left out: the
        transaction is rolled back and run again without it, so it alone fails."""
        failed: dict[int, StoreError] = {}
        try:
            conn = self._connect()
            while True:
                conn.execute("BEGIN IMMEDIATE")
                results, failing = self._attempt(conn, ops, failed)
                if failing is None:
                    conn.execute("COMMIT")
                    return [(results.get(n), failed.get(n)) for n in range(len(ops))]
                index, exc = failing
                if not conn.in_transaction:
                    raise exc  # it ended the whole transaction (a full disk, say): the batch fails
                conn.execute("ROLLBACK")
                failed[index] = self._error(exc)
        except Exception as exc:  # the transaction itself failed: none of the batch was written
            if self._conn is not None and self._conn.in_transaction:
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            return [(None, self._error(exc)) for _ in ops]

    @staticmethod
    def _attempt(
        conn: sqlite3.Connection, ops: list[_Op], failed: dict[int, StoreError]
    ) -> tuple[dict[int, Any], tuple[int, Exception] | None]:
        """Run the operations not failed yet; their results, or the first that raised."""
        results: dict[int, Any] = {}
        for index, op in enumerate(ops):
            if index not in failed:
                try:
                    results[index] = op(conn)
                except Exception as exc:
                    return results, (index, exc)
        return results, None

    def _error(self, exc: Exception) -> StoreError:
        """A StoreError of its own for one operation (one object raised in two tasks would mix
        their tracebacks), naming the file and caused by the original error."""
        if isinstance(exc, StoreError):
            error = StoreError(*exc.args)
            error.__cause__ = exc.__cause__
        else:
            error = StoreError(f"SQLite store {self.path}: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
        return error

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                self._check_schema(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """Create the tables in a new file; refuse a file of another layout."""
        if _version(conn) == 0:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if _version(conn) == 0:  # another process may have created them meanwhile
                    for statement in _TABLES:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        version = _version(conn)
        if version > SCHEMA:
            raise StoreError(
                f"SQLite store {self.path} was written by a newer mjasync (layout {version}; "
                f"this one reads layout {SCHEMA}): upgrade mjasync"
            )
        if version != SCHEMA:
            raise StoreError(f"SQLite store {self.path} has layout {version}, which mjasync cannot read")

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _decode(self, tag: object, text: object) -> JobRecord:
        """The record of one row; StoreError when it is not one (corrupt, or not mjasync's)."""
        try:
            if not isinstance(text, str | bytes):
                raise TypeError(f"the record column holds {type(text).__name__}")
            return decode_record(text)
        except Exception as exc:
            raise StoreError(f"SQLite store {self.path}: record {tag!r} is unreadable: {exc}") from exc

    def _add(self, record: JobRecord, conn: sqlite3.Connection) -> JobRecord:
        key = record.idempotency_key
        if key is not None:
            row = conn.execute("SELECT tag, record FROM jobs WHERE idempotency_key = ?", (key,)).fetchone()
            if row is not None:
                return self._decode(*row)
        conn.execute(
            "INSERT OR REPLACE INTO jobs (tag, idempotency_key, task_id, owner, ended, forgotten, record)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.tag, *_columns(record)),
        )
        return record

    def _get(self, tag: str, conn: sqlite3.Connection) -> JobRecord | None:
        row = conn.execute("SELECT tag, record FROM jobs WHERE tag = ?", (tag,)).fetchone()
        return None if row is None else self._decode(*row)

    def _rewrite(self, conn: sqlite3.Connection, record: JobRecord, **changes: Any) -> JobRecord:
        record = attrs.evolve(record, **changes)
        conn.execute(f"UPDATE jobs SET {_COLUMNS} WHERE tag = ?", (*_columns(record), record.tag))
        return record

    def _finish(self, infos: list[TaskInfo], at: float, conn: sqlite3.Connection) -> None:
        for info in infos:
            for row in conn.execute("SELECT tag, record FROM jobs WHERE task_id = ?", (info.id,)).fetchall():
                record = self._readable(*row)
                if record is not None:
                    self._rewrite(conn, record, final=info, ended=at)

    def _forget(self, name: str, at: float, conn: sqlite3.Connection) -> int:
        rows = conn.execute(
            "SELECT tag, record FROM jobs WHERE (task_id = ? OR tag = ?) AND forgotten IS NULL", (name, name)
        ).fetchall()
        marked = 0
        for row in rows:
            record = self._readable(*row)
            if record is not None:
                self._rewrite(conn, record, forgotten=at, ended=at if record.ended is None else record.ended)
                marked += 1
        return marked

    def _claim(self, owner: str, conn: sqlite3.Connection) -> list[JobRecord]:
        now = time.time()
        self._renew(owner, conn, now)
        rows = conn.execute(
            "SELECT tag, record FROM jobs WHERE forgotten IS NULL AND (owner IS ? OR NOT EXISTS"
            " (SELECT 1 FROM leases WHERE leases.owner = jobs.owner AND leases.expires > ?)) ORDER BY rowid",
            (owner, now),
        ).fetchall()
        claimed = []
        for row in rows:
            record = self._readable(*row)
            if record is None:
                continue
            claimed.append(record if record.owner == owner else self._rewrite(conn, record, owner=owner))
        conn.execute("DELETE FROM leases WHERE expires <= ?", (now,))  # an expired lease is no lease
        return claimed

    def _renew(self, owner: str, conn: sqlite3.Connection, now: float | None = None) -> None:
        conn.execute(
            "INSERT INTO leases (owner, expires) VALUES (?, ?)"
            " ON CONFLICT (owner) DO UPDATE SET expires = excluded.expires",
            (owner, (time.time() if now is None else now) + self.lease),
        )

    def _readable(self, tag: object, text: object) -> JobRecord | None:
        """The record of a row, or None (with a warning) when it does not decode: left alone."""
        try:
            return self._decode(tag, text)
        except StoreError as exc:
            logger.warning("%s; skipped", exc)
            return None


def _version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def _columns(record: JobRecord) -> tuple[object, ...]:
    """The indexed columns and the JSON of a record, in `_COLUMNS` order."""
    return (
        record.idempotency_key, record.task_id, record.owner, record.ended, record.forgotten,
        encode_record(record),
    )


def _execute(sql: str, params: tuple[object, ...], conn: sqlite3.Connection) -> int:
    """Run one statement; how many rows it changed."""
    return conn.execute(sql, params).rowcount


def _json(value: object) -> str:
    """A value as JSON text: SQLite's json() keeps a number's digits as written (a float exact)."""
    return json.dumps(value)


def _nothing(conn: sqlite3.Connection) -> None:
    """An operation that does nothing: waiting for it waits for everything queued before."""
