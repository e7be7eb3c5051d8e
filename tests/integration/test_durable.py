"""Durable jobs over loopback: write-ahead records, idempotency keys, meta, resume, forget."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

import mjasync
from mjasync.testing import FakeProxy
from tests.conftest import FAST, SETTLE_TIMEOUT, eventually


def client(fake: FakeProxy, store: mjasync.Store | None = None, **overrides: Any) -> mjasync.Client:
    options = {"replica": "bot-1", **FAST, **overrides}
    return mjasync.Client(fake.url, fake.api_key, auth=fake.auth, store=store, **options)


@pytest.fixture
async def fake() -> Any:
    async with FakeProxy("reference", job_seconds=0.05, seed=3) as proxy:
        yield proxy


async def test_the_same_key_twice_in_one_process_sends_one_request(fake: FakeProxy) -> None:
    async with client(fake) as mj:
        first = await mj.imagine("a fox", idempotency_key="msg-1", meta={"chat": 7})
        again = await mj.imagine("a fox", idempotency_key="msg-1", meta={"chat": 8})
        other = await mj.imagine("a fox", idempotency_key="msg-2")
    assert fake.stats.accepted_submits == 2
    assert again.id == first.id != other.id
    assert again.meta == {"chat": 7}  # the job's own meta, not the redelivery's


async def test_the_same_key_at_once_waits_for_the_first_submit(fake: FakeProxy) -> None:
    fake.faults.add("slow", "submit", delay=0.2, times=1)
    async with client(fake) as mj:
        tasks = await asyncio.gather(*(mj.imagine("a fox", idempotency_key="k") for _ in range(5)))
    assert fake.stats.accepted_submits == 1
    assert len({t.id for t in tasks}) == 1


async def test_a_key_holds_across_a_restart_and_resume_hands_back_the_job(
    fake: FakeProxy, tmp_path: Path
) -> None:
    path = tmp_path / "jobs.db"
    async with client(fake, mjasync.SQLiteStore(path)) as mj:
        task = await mj.imagine("a fox", idempotency_key="update-41", meta={"chat": 41})
    async with client(fake, mjasync.SQLiteStore(path)) as mj:
        again = await mj.imagine("a fox", idempotency_key="update-41")
        resumed = await mj.resume()
        assert again.id == task.id
        assert [t.id for t in resumed] == []  # this client already follows it (the key gave it)
        info = await again.wait(timeout=30)
        assert info.succeeded
    assert fake.stats.accepted_submits == 1
    async with client(fake, mjasync.SQLiteStore(path)) as mj:
        (back,) = await mj.resume()
        assert (back.id, back.meta) == (task.id, {"chat": 41})
        assert back.last is not None and back.last.succeeded  # the final snapshot was stored
        await back.forget()
    async with client(fake, mjasync.SQLiteStore(path)) as mj:
        assert await mj.resume() == []  # forgotten: never handed back by resume()
        # ...but its key still names it (a chat platform redelivering the message after the
        # bot replied and forgot costs no second job), until the retention purge
        again = await mj.imagine("a fox", idempotency_key="update-41")
        assert (again.id, again.meta) == (task.id, {"chat": 41})
    assert fake.stats.accepted_submits == 1


@pytest.mark.parametrize("meta", [{"x": {1, 2}}, {"x": "y" * 5000}, {1: "x"}, ["x"], {"x": float("nan")}])
async def test_bad_meta_sends_nothing(fake: FakeProxy, meta: Any) -> None:
    async with client(fake) as mj:
        with pytest.raises(mjasync.InvalidRequestError):
            await mj.imagine("a fox", meta=meta)
    assert fake.stats.total_requests == 0


async def test_a_store_that_cannot_write_refuses_the_submit_before_sending(
    fake: FakeProxy, tmp_path: Path
) -> None:
    store = mjasync.SQLiteStore(tmp_path / "missing-dir" / "jobs.db")
    async with client(fake, store) as mj:
        with pytest.raises(mjasync.StoreError, match="missing-dir"):
            await mj.imagine("a fox")
    assert fake.stats.total_requests == 0


async def test_resume_adopts_a_job_whose_answer_never_came(fake: FakeProxy, tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    fake.faults.add("reset_after_record", "submit", times=1)
    async with client(fake, mjasync.SQLiteStore(path), reconcile_delays=()) as mj:
        with pytest.raises(mjasync.SubmitUncertainError):
            await mj.imagine("a fox", meta={"chat": 1})
    assert fake.stats.accepted_submits == 1
    async with client(fake, mjasync.SQLiteStore(path)) as mj:
        (task,) = await mj.resume()
        assert task.meta == {"chat": 1}
        assert (await task.wait(timeout=30)).succeeded
    assert set(fake.jobs) == {task.id}


async def _orphan(
    store: mjasync.Store, *, age: float, owner: str = "bot-1", tag: str = "mja-" + "ab" * 16
) -> mjasync.JobRecord:
    """A record as a process leaves it when killed after writing it and before sending."""
    record = mjasync.JobRecord(
        tag=tag, endpoint="/mj/submit/imagine", body={"prompt": "a fox", "botType": "MID_JOURNEY", "state": tag},
        meta={"chat": 2}, owner=owner, created=time.time() - age,
    )
    await store.add(record)
    return record


async def test_resume_sends_again_only_after_the_quiet_period(fake: FakeProxy) -> None:
    store = mjasync.MemoryStore()
    record = await _orphan(store, age=0.0)
    async with client(fake, store, resend_after=3600.0) as mj:
        assert await mj.resume() == []  # absent, but not for long enough: kept open
    assert fake.stats.accepted_submits == 0
    assert await store.get(record.tag) is not None
    async with client(fake, store, resend_after=None) as mj:
        assert await mj.resume() == []
    assert fake.stats.accepted_submits == 0
    async with client(fake, store, resend_after=0.0) as mj:
        (task,) = await mj.resume()
        assert (await task.wait(timeout=30)).state_tag == record.tag
        assert await mj.resume() == []  # followed already; and never sent twice
    assert fake.stats.submits_by_state == {record.tag: 1}


async def test_resume_sends_again_after_each_ambiguous_resend(fake: FakeProxy) -> None:
    store = mjasync.MemoryStore()
    record = await _orphan(store, age=0.0)
    fake.faults.add("http_503", "submit", times=1)  # the first resend: no job, no answer
    async with client(fake, store, resend_after=0.0) as mj:
        assert await mj.resume() == []  # still open
        (task,) = await mj.resume()
        assert task.meta == record.meta
    assert fake.stats.requests["POST /mj/submit/imagine"] == 2
    assert fake.stats.submits_by_state == {record.tag: 1}


async def test_resume_leaves_a_live_replicas_records_and_takes_a_dead_ones(fake: FakeProxy) -> None:
    store = mjasync.MemoryStore()
    await store.renew("bot-2")
    record = await _orphan(store, age=0.0, owner="bot-2")
    async with client(fake, store, resend_after=None) as mj:
        await mj.resume()
        assert (await store.get(record.tag)).owner == "bot-2"  # type: ignore[union-attr]
        store.lease = 0.0
        await store.renew("bot-2")  # bot-2's lease ends now
        await mj.resume()
        assert (await store.get(record.tag)).owner == "bot-1"  # type: ignore[union-attr]
    assert fake.stats.total_requests > 0 and fake.stats.accepted_submits == 0


async def test_resume_looks_up_every_open_record_in_one_round(fake: FakeProxy) -> None:
    store = mjasync.MemoryStore()
    fake.faults.add("reset_after_record", "submit", times=10)
    async with client(fake, store, reconcile_delays=()) as mj:
        lost = await asyncio.gather(*(mj.imagine(f"fox {n}", meta={"n": n}) for n in range(10)), return_exceptions=True)
    assert all(isinstance(error, mjasync.SubmitUncertainError) for error in lost)
    for n in range(20):  # and 20 that died before sending
        await _orphan(store, age=0.0, tag=f"mja-{n:032x}")
    before = fake.stats.requests.copy()
    async with client(fake, store, resend_after=None) as mj:
        resumed = await mj.resume()
    reads = fake.stats.requests - before
    assert sorted(task.meta["n"] for task in resumed) == list(range(10))
    # one read of the list and of the queue for all 30 (the simulator counts no 404: the one
    # probe of the tag query, which the reference server lacks, is not in `reads`)
    assert reads == {"GET /mj/task/list": 1, "GET /mj/task/queue": 1}, reads
    assert fake.stats.accepted_submits == 10


async def test_tags_asked_for_during_a_look_up_share_the_next_one(fake: FakeProxy) -> None:
    fake.faults.add("slow", "task_list", delay=0.3, times=1)
    async with client(fake, reconcile="list-scan") as mj:
        first = asyncio.ensure_future(mj.find("mja-" + "0" * 32))
        await eventually(lambda: fake.stats.requests["GET /mj/task/list"] == 1)
        later = await asyncio.gather(*(mj.find(f"mja-{n:032x}") for n in range(1, 31)))
        assert await first is None and later == [None] * 30
    assert fake.stats.requests["GET /mj/task/list"] == 2
    assert fake.stats.requests["GET /mj/task/queue"] == 2


async def test_forget_by_state_tag_closes_a_record_no_look_up_can_settle(fake: FakeProxy) -> None:
    store = mjasync.MemoryStore()
    record = await _orphan(store, age=0.0)
    async with client(fake, store, resend_after=None) as mj:
        assert await mj.resume() == []  # open: never resent, never found
        await mj.forget(record.tag)
        assert await mj.resume() == []
    assert (await store.claim("bot-1")) == []
    assert fake.stats.accepted_submits == 0


async def test_a_callback_on_one_replica_wakes_the_waiter_on_another(tmp_path: Path) -> None:
    store = mjasync.MemoryStore()  # replicas in one process share a MemoryStore as a bus
    async with FakeProxy("extended", job_seconds=0.05) as proxy:
        slow = {**FAST, "poll_interval": 3600.0}
        async with (
            mjasync.Client(proxy.url, proxy.api_key, auth=proxy.auth, store=store, replica="a", **slow) as a,
            mjasync.Client(proxy.url, proxy.api_key, auth=proxy.auth, store=store, replica="b", **slow) as b,
        ):
            token = "replicas-share-this-token"  # behind one public URL, replicas share the token
            a.callbacks.configure("http://127.0.0.1", token=token)
            url = await a.callbacks.serve("127.0.0.1", 0)
            b.callbacks.configure(url, token=token)  # b's jobs call back to a's receiver
            task = await b.imagine("a fox")
            info = await asyncio.wait_for(task.wait(), SETTLE_TIMEOUT)  # polling alone: an hour
            assert info.succeeded
            assert b.stats.resolved_by_callback == 1 and a.stats.resolved_by_callback == 0
