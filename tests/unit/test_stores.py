"""Every store keeps the same contract: MemoryStore, SQLiteStore and RedisStore (against a real
redis-server) run one suite, then the SQLite file's own promises (durability, layout, corrupt
rows, group commit), and claims atomic across processes for the shared stores. RedisStore's own
promises are in tests/integration/test_redis_store.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import mjasync
from mjasync._convert import structure
from mjasync._memory_store import MemoryStore
from mjasync._redis_store import RedisStore
from mjasync._sqlite_store import SQLiteStore
from mjasync._store import DEFAULT_LEASE, SCHEMA, JobRecord, Store
from tests.conftest import SETTLE_TIMEOUT, eventually

TASK: dict[str, Any] = {
    "id": "1730621718151844", "action": "IMAGINE", "status": "SUCCESS", "prompt": "a fox",
    "promptEn": "a fox", "description": "/imagine a fox", "progress": "100%",
    "state": "chat-7:mja-" + "cd" * 16, "submitTime": 1730621718151, "startTime": 1730621720000,
    "finishTime": 1730621745817, "imageUrl": "https://cdn.example/a.png", "failReason": None,
    "buttons": [
        {"customId": "MJ::JOB::upsample::1::3785da15-4f70-4034-9128-f3ff1ac634fa", "label": "U1",
         "type": 2, "style": 2, "emoji": ""},
        {"customId": "MJ::JOB::reroll::0::3785da15-4f70-4034-9128-f3ff1ac634fa::SOLO", "label": "",
         "type": 2, "style": 2, "emoji": "🔄", "someButtonField": 1},
    ],
    "properties": {"finalPrompt": "a fox --v 7", "finalZhPrompt": ""},
    "someNewField": {"kept": [1, "two"]},
}

Factory = Callable[..., Store]


def info(task_id: str = TASK["id"]) -> mjasync.TaskInfo:
    return structure({**TASK, "id": task_id}, mjasync.TaskInfo)


def record(tag: str = "mja-1", **changes: Any) -> JobRecord:
    base = JobRecord(
        tag=tag, endpoint="/mj/submit/imagine", body={"prompt": "a fox", "state": tag, "base64Array": []},
        meta={"chat": 1, "nested": {"list": [1, "two", None, 2.5, True], "map": {"ü": "ok"}}},
        owner="bot-1", created=time.time(), pressed="MJ::JOB::upsample::1::abc",
    )
    return attrs.evolve(base, **changes)


async def wait_past(moment: float) -> None:
    """Until the wall clock is past `moment` (a lease's end): only time has to pass."""
    await asyncio.sleep(max(0.0, moment - time.time()) + 0.01)  # a busy machine only sleeps longer
    assert time.time() > moment


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    """Opens a store of the kind under test (each SQLite one its own file, each Redis one its own
    namespace on the session's redis-server); all closed after."""
    made: list[Store] = []
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_server").url
        namespace: str = request.getfixturevalue("redis_namespace")

    def make(*, lease: float = DEFAULT_LEASE) -> Store:
        store: Store
        if request.param == "memory":
            store = MemoryStore(lease=lease)
        elif request.param == "redis":
            store = RedisStore(url, namespace=f"{namespace}-{len(made)}", lease=lease)
        else:
            store = SQLiteStore(tmp_path / f"jobs-{len(made)}.db", lease=lease)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


@pytest.fixture
def store(make_store: Factory) -> Store:
    return make_store()


# -- the shared contract -------------------------------------------------------------------------


async def test_a_record_round_trips(store: Store) -> None:
    written = record()
    assert await store.add(written) == written
    got = await store.get("mja-1")
    assert got == written
    assert got is not None and got.meta["nested"] == {"list": [1, "two", None, 2.5, True], "map": {"ü": "ok"}}
    assert got.pressed == "MJ::JOB::upsample::1::abc" and got.body["prompt"] == "a fox"
    assert await store.get("mja-2") is None


async def test_a_held_key_returns_the_first_record_and_stores_nothing(store: Store) -> None:
    first = record("mja-1", idempotency_key="k")
    assert await store.add(first) == first
    assert await store.add(record("mja-2", idempotency_key="k")) == first
    assert await store.get("mja-2") is None
    other = record("mja-3", idempotency_key="other")
    assert await store.add(other) == other  # another key is no conflict
    unkeyed = [record(f"mja-free-{n}") for n in range(2)]  # no key: never a conflict
    assert [await store.add(r) for r in unkeyed] == unkeyed


async def test_updates_and_the_final_snapshot(store: Store) -> None:
    final = info()
    await store.add(record())
    sent_at = 1733160000.1234567  # every digit kept
    await store.set_sent("mja-1", sent_at=sent_at, may_resend=False)
    got = await store.get("mja-1")
    assert got is not None and (got.sent_at, got.may_resend, got.body["prompt"]) == (sent_at, False, "a fox")
    assert got.may_resend is False
    await store.set_task_id("mja-1", final.id)
    got = await store.get("mja-1")
    assert got is not None and (got.task_id, got.body, got.final) == (final.id, {}, None)
    await store.finish([info("unrelated"), final], at=9.0)
    got = await store.get("mja-1")
    assert got is not None
    assert (got.sent_at, got.may_resend, got.task_id, got.body, got.ended) == (sent_at, False, final.id, {}, 9.0)
    assert got.final == final
    assert got.final.state_tag == "mja-" + "cd" * 16 and got.final.state == "chat-7"
    assert got.final.extra == {"someNewField": {"kept": [1, "two"]}}
    assert got.final.buttons[1].extra == {"someButtonField": 1}
    assert got.meta == record().meta and got.tag == "mja-1"


async def test_updates_of_an_absent_record_change_nothing(store: Store) -> None:
    await store.set_sent("mja-none", sent_at=1.0, may_resend=False)
    await store.set_task_id("mja-none", "7")
    await store.finish([info("7")], at=1.0)
    await store.delete("mja-none")
    assert await store.get("mja-none") is None
    assert await store.forget("7", 1.0) == 0
    assert await store.forget("mja-none", 1.0) == 0
    assert await store.claim("bot-1") == []


async def test_delete_drops_one_record_and_frees_its_key(store: Store) -> None:
    await store.add(record("mja-1", idempotency_key="k"))
    await store.add(record("mja-2"))
    await store.delete("mja-1")
    assert await store.get("mja-1") is None
    assert await store.get("mja-2") is not None
    fresh = record("mja-3", idempotency_key="k")
    assert await store.add(fresh) == fresh


async def test_a_forgotten_record_is_never_claimed_again_and_holds_its_key_until_purged(store: Store) -> None:
    await store.add(record("mja-1", idempotency_key="k"))
    await store.add(record("mja-2"))
    await store.add(record("mja-done"))
    await store.add(record("mja-unsent"))
    await store.add(record("mja-other"))
    for tag, task_id in (("mja-1", "42"), ("mja-2", "42"), ("mja-done", "44"), ("mja-other", "43")):
        await store.set_task_id(tag, task_id)
    await store.finish([info("44")], at=50.0)
    assert await store.forget("42", 100.0) == 2  # by task id
    assert await store.forget("42", 101.0) == 0  # already forgotten: not counted again
    assert await store.forget("mja-unsent", 100.0) == 1  # by state tag
    assert await store.forget("44", 100.0) == 1
    assert [r.tag for r in await store.claim("bot-1")] == ["mja-other"]
    forgotten = await store.get("mja-1")
    assert forgotten is not None and (forgotten.forgotten, forgotten.ended) == (100.0, 100.0)
    done = await store.get("mja-done")
    assert done is not None and (done.forgotten, done.ended) == (100.0, 50.0)  # its end is kept
    assert await store.add(record("mja-3", idempotency_key="k")) == forgotten  # the key still names it
    assert await store.get("mja-3") is None
    assert await store.purge(100.5) == 4  # retention over: they go, the key with them
    await store.set_sent("mja-1", sent_at=1.0, may_resend=True)
    await store.set_task_id("mja-1", "42")
    await store.finish([info("42")], at=1.0)
    assert await store.get("mja-1") is None and await store.get("mja-2") is None  # never come back
    assert [r.tag for r in await store.claim("bot-1")] == ["mja-other"]
    fresh = record("mja-3", idempotency_key="k")
    assert await store.add(fresh) == fresh


async def test_claims_take_own_and_unleased_records_but_not_a_live_replicas(store: Store) -> None:
    await store.renew("alive")
    await store.add(record("mja-own", owner="bot-1"))
    await store.add(record("mja-alive", owner="alive"))
    await store.add(record("mja-dead", owner="dead"))  # no lease at all
    claimed = await store.claim("bot-1")
    assert sorted(r.tag for r in claimed) == ["mja-dead", "mja-own"]
    assert {r.owner for r in claimed} == {"bot-1"}
    moved = await store.get("mja-dead")
    assert moved is not None and moved.owner == "bot-1"  # the claim is stored, not just returned
    kept = await store.get("mja-alive")
    assert kept is not None and kept.owner == "alive"
    assert await store.claim("other") == []  # bot-1's lease is live now, alive's too
    assert sorted(r.tag for r in await store.claim("bot-1")) == ["mja-dead", "mja-own"]  # again: still its own


async def test_the_records_of_an_expired_lease_are_claimed(make_store: Factory) -> None:
    store = make_store(lease=0.05)
    await store.renew("dead")
    renewed = time.time()
    await store.add(record("mja-orphan", owner="dead"))
    await wait_past(renewed + store.lease)
    claimed = await store.claim("heir")
    assert [(r.tag, r.owner) for r in claimed] == [("mja-orphan", "heir")]
    got = await store.get("mja-orphan")
    assert got is not None and got.owner == "heir"


async def test_purge_drops_only_old_ended_records(store: Store) -> None:
    for tag, task_id in (("mja-old", "1"), ("mja-edge", "2"), ("mja-new", "3"), ("mja-open", "4")):
        await store.add(record(tag))
        await store.set_task_id(tag, task_id)
    await store.add(record("mja-unsent"))
    await store.finish([info("1")], at=100.0)
    await store.finish([info("2")], at=150.0)
    await store.finish([info("3")], at=200.0)
    assert await store.purge(150.0) == 1
    gone = {t: await store.get(t) is None for t in ("mja-old", "mja-edge", "mja-new", "mja-open", "mja-unsent")}
    assert gone == {"mja-old": True, "mja-edge": False, "mja-new": False, "mja-open": False, "mja-unsent": False}
    assert await store.purge(150.0) == 0


# -- SQLite only ---------------------------------------------------------------------------------


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """The file opened with the sqlite3 module directly (committed and closed after)."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        yield db


def test_construction_does_no_io_and_needs_no_loop(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    store = SQLiteStore(path, lease=5.0)
    assert not path.exists()
    assert str(path) in repr(store) and store.lease == 5.0


async def test_a_new_file_gets_the_layout_and_the_wal_journal(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    store = SQLiteStore(path)
    await store.add(record())
    with raw(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        row = db.execute("SELECT tag, idempotency_key, task_id, owner, ended FROM jobs").fetchone()
        assert row == ("mja-1", None, None, "bot-1", None)
    await store.close()


async def test_records_survive_a_close_and_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    store = SQLiteStore(path)
    await store.add(record("mja-1", idempotency_key="k"))
    await store.add(record("mja-2"))
    await store.set_task_id("mja-1", TASK["id"])
    await store.finish([info()], at=9.0)
    before = await store.get("mja-1")
    await store.close()
    again = SQLiteStore(path)
    assert await again.get("mja-1") == before
    assert await again.add(record("mja-3", idempotency_key="k")) == before  # the key is still held
    assert await again.get("mja-3") is None
    assert sorted(r.tag for r in await again.claim("bot-1")) == ["mja-1", "mja-2"]
    await again.close()


async def test_a_corrupt_row_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "jobs.db"
    store = SQLiteStore(path)
    for tag in ("mja-good", "mja-bad", "mja-blob", "mja-later"):
        await store.add(record(tag, owner="dead"))
        await store.set_task_id(tag, "7")
    with raw(path) as db:
        db.execute("UPDATE jobs SET record = '{not json' WHERE tag = 'mja-bad'")
        db.execute("UPDATE jobs SET record = x'00ff' WHERE tag = 'mja-blob'")
    with caplog.at_level(logging.WARNING, "mjasync"):
        claimed = await store.claim("bot-2")
        await store.finish([info("7")], at=3.0)  # the others still get their snapshot
    assert [r.tag for r in claimed] == ["mja-good", "mja-later"]
    warned = [r.getMessage() for r in caplog.records if r.name == "mjasync" and r.levelno == logging.WARNING]
    assert any("mja-bad" in m for m in warned) and any("mja-blob" in m for m in warned)
    for tag in ("mja-good", "mja-later"):
        got = await store.get(tag)
        assert got is not None and got.ended == 3.0 and got.owner == "bot-2"
    with raw(path) as db:  # not claimed: the row is left as it was
        assert db.execute("SELECT owner FROM jobs WHERE tag = 'mja-bad'").fetchone() == ("dead",)
    with pytest.raises(mjasync.StoreError, match="mja-bad"):
        await store.get("mja-bad")
    await store.close()


async def test_a_file_of_a_newer_mjasync_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with raw(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA + 1}")
    store = SQLiteStore(path)
    with pytest.raises(mjasync.StoreError, match="newer mjasync") as caught:
        await store.add(record())
    assert str(path) in str(caught.value)
    with pytest.raises(mjasync.StoreError, match="newer mjasync"):
        await store.claim("bot-1")  # every use, not only the first
    await store.close()
    with raw(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA + 1,)
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == []


@pytest.mark.parametrize("where", ["missing directory", "not a database"])
async def test_a_file_that_cannot_be_opened_raises_store_error(tmp_path: Path, where: str) -> None:
    path = tmp_path / "nowhere" / "jobs.db"
    if where == "not a database":
        path = tmp_path / "jobs.db"
        path.write_bytes(b"this is no SQLite file, only text long enough to fill a header." * 4)
    store = SQLiteStore(path)
    with pytest.raises(mjasync.StoreError) as caught:
        await store.add(record())
    assert str(path) in str(caught.value)
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    await store.close()


async def test_close_finishes_queued_work_closes_the_file_then_refuses_more(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    store = SQLiteStore(path)
    await store.get("mja-warm-up")
    flushed = store._flushes
    with contextlib.closing(sqlite3.connect(path)) as blocker:
        blocker.execute("BEGIN IMMEDIATE")  # the store's next transaction waits for this one
        first = [asyncio.ensure_future(store.add(record(f"mja-a{n}"))) for n in range(10)]
        await eventually(lambda: store._flushes == flushed + 1)  # in flight, held up by the blocker
        second = [asyncio.ensure_future(store.add(record(f"mja-b{n}"))) for n in range(10)]
        await asyncio.sleep(0)  # queued behind the transaction in flight
        closing = asyncio.ensure_future(store.close())
        await asyncio.sleep(0)
        blocker.rollback()
    await closing
    assert all(add.done() and add.exception() is None for add in first + second)
    assert not await asyncio.to_thread(os.path.exists, f"{path}-wal")  # the last connection closed it
    with pytest.raises(mjasync.StoreError, match="closed"):
        await store.get("mja-a1")
    with pytest.raises(mjasync.StoreError, match="closed"):
        await store.add(record("mja-late"))
    await store.close()  # again: nothing happens
    with raw(path) as db:
        assert db.execute("SELECT count(*) FROM jobs").fetchone() == (20,)
    await SQLiteStore(path).close()  # never used: nothing to do


async def test_concurrent_writes_all_land_in_few_transactions(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "jobs.db")
    records = [record(f"mja-{n}") for n in range(200)]
    assert await asyncio.gather(*(store.add(r) for r in records)) == records
    assert store._flushes < len(records) / 10  # grouped: not one transaction each
    before = store._flushes
    first = asyncio.ensure_future(store.add(record("mja-first")))
    await asyncio.sleep(0)  # `first` is queued; the next is asked one loop iteration later
    second = asyncio.ensure_future(store.add(record("mja-second")))
    await asyncio.gather(first, second)
    assert store._flushes - before == 1  # a transaction waits a little for more work
    await asyncio.gather(*(store.set_task_id(r.tag, str(n)) for n, r in enumerate(records)))
    assert all(got is not None and got.task_id == str(n) for n, got in
               enumerate(await asyncio.gather(*(store.get(r.tag) for r in records))))
    await store.close()


async def test_one_failing_operation_leaves_the_rest_of_its_batch_alone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "jobs.db")
    for tag, task_id in (("mja-good", "1"), ("mja-bad", "2")):
        await store.add(record(tag))
        await store.set_task_id(tag, task_id)
    unwritable = mjasync.TaskInfo(id="2", properties={"x": object()})  # no JSON for it
    before = store._flushes
    outcomes = await asyncio.gather(
        store.add(record("mja-a")), store.finish([info("1"), unwritable], at=5.0), store.add(record("mja-b")),
        return_exceptions=True,
    )
    assert store._flushes - before == 1  # the three shared one transaction
    assert isinstance(outcomes[1], mjasync.StoreError)
    assert [getattr(outcomes[n], "tag", None) for n in (0, 2)] == ["mja-a", "mja-b"]
    assert await store.get("mja-a") is not None and await store.get("mja-b") is not None
    good = await store.get("mja-good")
    assert good is not None and good.final is None and good.ended is None  # its first half was undone
    await store.close()


CLAIMER = """
import asyncio, json, pathlib, sys, time
from mjasync._redis_store import RedisStore
from mjasync._sqlite_store import SQLiteStore
kind, where, owner, ready, go = sys.argv[1:]
async def main():
    store = SQLiteStore(where) if kind == "sqlite" else RedisStore(where.split(" ")[0], namespace=where.split(" ")[1])
    await store.get("warm-up")  # the file is open (the connection made) before the race starts
    pathlib.Path(ready).touch()
    deadline = time.monotonic() + 60
    while not pathlib.Path(go).exists():
        assert time.monotonic() < deadline, "never told to go"
        time.sleep(0.0005)
    print(json.dumps([r.tag for r in await store.claim(owner)]))
    await store.close()
asyncio.run(main())
"""


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_claims_are_atomic_across_processes(tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> None:
    go = tmp_path / "go"
    path = tmp_path / "jobs.db"
    store: Store
    if kind == "sqlite":
        where = str(path)
        store = SQLiteStore(path, lease=0.05)
    else:
        url, namespace = request.getfixturevalue("redis_server").url, request.getfixturevalue("redis_namespace")
        where = f"{url} {namespace}"
        store = RedisStore(url, namespace=namespace, lease=0.05)
    await store.renew("dead")
    renewed = time.time()
    tags = [f"mja-{n}" for n in range(300)]
    await asyncio.gather(*(store.add(record(tag, owner="dead")) for tag in tags))
    await store.close()
    await wait_past(renewed + 0.05)  # dead's lease ended: every record is an orphan
    ready = [tmp_path / f"ready-{n}" for n in range(4)]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLAIMER, kind, where, f"bot-{n}", str(ready[n]), str(go),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        for n in range(4)
    ]
    try:
        await eventually(lambda: all(r.exists() or p.returncode is not None for r, p in zip(ready, procs, strict=True)))
        go.touch()
        outputs = [await asyncio.wait_for(p.communicate(), SETTLE_TIMEOUT) for p in procs]
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
    got = {f"bot-{n}": json.loads(out) for n, (out, _) in enumerate(outputs)}
    claimed = [tag for tags_of in got.values() for tag in tags_of]
    assert len(claimed) == len(set(claimed)) == 300  # none twice
    assert set(claimed) == set(tags)  # all taken
    if kind == "sqlite":
        with raw(path) as db:
            owners = dict(db.execute("SELECT tag, owner FROM jobs").fetchall())
    else:
        again = RedisStore(url, namespace=namespace)
        owners = {tag: got_.owner for tag in tags if (got_ := await again.get(tag)) is not None}
        await again.close()
    assert all(owners[tag] == owner for owner, tags_of in got.items() for tag in tags_of)
