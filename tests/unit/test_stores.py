"""Every store keeps the same contract: MemoryStore and SQLiteStore run one suite."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import mjasync
from mjasync._convert import structure

TASK = {
    "id": "1730621718151844", "action": "IMAGINE", "status": "SUCCESS", "progress": "100%",
    "state": "mine:mja-" + "cd" * 16, "submitTime": 1730621718151, "imageUrl": "https://cdn.example/a.png",
    "buttons": [{"customId": "MJ::JOB::upsample::1::abc", "label": "U1", "type": 2, "style": 2, "emoji": ""}],
    "someNewField": {"kept": True},
}


def record(tag: str = "mja-1", **changes: Any) -> mjasync.JobRecord:
    base = mjasync.JobRecord(
        tag=tag, endpoint="/mj/submit/imagine", body={"prompt": "a fox", "state": tag},
        meta={"chat": 1, "nested": {"list": [1, "two", None]}}, owner="bot-1", created=time.time(),
        pressed="MJ::JOB::upsample::1::abc",
    )
    return attrs.evolve(base, **changes)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[mjasync.Store]:
    made: mjasync.Store = mjasync.MemoryStore() if request.param == "memory" else mjasync.SQLiteStore(tmp_path / "j.db")
    yield made
    await made.close()


async def test_a_record_round_trips(store: mjasync.Store) -> None:
    written = record()
    assert await store.add(written) == written
    assert await store.get("mja-1") == written
    assert await store.get("mja-2") is None


async def test_a_held_key_returns_the_first_record_and_stores_nothing(store: mjasync.Store) -> None:
    first = record("mja-1", idempotency_key="k")
    await store.add(first)
    assert await store.add(record("mja-2", idempotency_key="k")) == first
    assert await store.get("mja-2") is None


async def test_updates_and_the_final_snapshot(store: mjasync.Store) -> None:
    info = structure(TASK, mjasync.TaskInfo)
    await store.add(record())
    await store.set_sent("mja-1", sent_at=5.0, may_resend=False)
    await store.set_task_id("mja-1", info.id)
    await store.finish([info], at=9.0)
    got = await store.get("mja-1")
    assert got is not None
    assert (got.sent_at, got.may_resend, got.task_id, got.body, got.ended) == (5.0, False, info.id, {}, 9.0)
    assert got.final == info and got.final.extra == {"someNewField": {"kept": True}}


async def test_a_forgotten_record_never_comes_back_and_frees_its_key(store: mjasync.Store) -> None:
    await store.add(record(idempotency_key="k"))
    await store.set_task_id("mja-1", "42")
    assert await store.forget("42") == 1
    await store.set_task_id("mja-1", "42")
    await store.finish([structure({**TASK, "id": "42"}, mjasync.TaskInfo)], at=1.0)
    assert await store.get("mja-1") is None
    assert await store.claim("bot-1") == []
    fresh = record("mja-2", idempotency_key="k")
    assert await store.add(fresh) == fresh


async def test_claims_take_own_and_orphaned_records_only(store: mjasync.Store) -> None:
    await store.renew("alive")
    await store.add(record("mja-own", owner="bot-1"))
    await store.add(record("mja-alive", owner="alive"))
    await store.add(record("mja-dead", owner="dead"))  # no lease at all
    claimed = await store.claim("bot-1")
    assert sorted(r.tag for r in claimed) == ["mja-dead", "mja-own"]
    assert {r.owner for r in claimed} == {"bot-1"}
    assert await store.claim("other") == []  # bot-1's lease is live now


async def test_purge_drops_only_old_ended_records(store: mjasync.Store) -> None:
    for tag, task_id in (("mja-old", "1"), ("mja-new", "2"), ("mja-open", "3")):
        await store.add(record(tag))
        await store.set_task_id(tag, task_id)
    await store.finish([structure({**TASK, "id": "1"}, mjasync.TaskInfo)], at=100.0)
    await store.finish([structure({**TASK, "id": "2"}, mjasync.TaskInfo)], at=200.0)
    assert await store.purge(150.0) == 1
    assert [await store.get(t) is None for t in ("mja-old", "mja-new", "mja-open")] == [True, False, False]


async def test_sqlite_records_survive_a_reopen_and_writes_are_grouped(tmp_path: Path) -> None:
    store = mjasync.SQLiteStore(tmp_path / "j.db")
    await asyncio.gather(*(store.add(record(f"mja-{i}")) for i in range(200)))
    assert store._flushes < 200 / 4
    await store.close()
    with pytest.raises(mjasync.StoreError, match="closed"):
        await store.get("mja-1")
    again = mjasync.SQLiteStore(tmp_path / "j.db")
    assert len(await again.claim("bot-1")) == 200
    await again.close()


async def test_sqlite_skips_a_corrupt_record_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "j.db"
    store = mjasync.SQLiteStore(path)
    await store.add(record("mja-good"))
    await store.add(record("mja-bad"))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE jobs SET record = '{not json' WHERE tag = 'mja-bad'")
    with caplog.at_level(logging.WARNING, "mjasync"):
        assert [r.tag for r in await store.claim("bot-1")] == ["mja-good"]
    assert "mja-bad" in caplog.text
    await store.close()


async def test_sqlite_refuses_a_newer_schema_and_a_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    for bad in (mjasync.SQLiteStore(path), mjasync.SQLiteStore(tmp_path / "nowhere" / "j.db")):
        with pytest.raises(mjasync.StoreError):
            await bad.get("mja-1")
        await bad.close()


CLAIMER = """
import asyncio, json, os, sys, time
import mjasync
path, owner, go = sys.argv[1:]
async def main():
    store = mjasync.SQLiteStore(path)
    await store.get("warm-up")
    while not os.path.exists(go):
        time.sleep(0.001)
    print(json.dumps([r.tag for r in await store.claim(owner)]))
    await store.close()
asyncio.run(main())
"""


async def test_sqlite_claims_are_atomic_across_processes(tmp_path: Path) -> None:
    path, go = tmp_path / "j.db", tmp_path / "go"
    store = mjasync.SQLiteStore(path)
    await asyncio.gather(*(store.add(record(f"mja-{i}", owner="dead")) for i in range(300)))
    await store.close()
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLAIMER, str(path), f"bot-{n}", str(go), stdout=asyncio.subprocess.PIPE
        )
        for n in range(4)
    ]
    go.touch()
    outs = [json.loads((await proc.communicate())[0]) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    claimed = [tag for out in outs for tag in out]
    assert sorted(claimed) == sorted(f"mja-{i}" for i in range(300))  # all taken, none twice
