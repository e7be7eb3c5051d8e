"""imagine_many against FakeProxy: queue limits, results tagged by prompt, never a double submit."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

import mjasync
from mjasync.testing import FakeProxy
from tests.integration.conftest import DIALECTS, client_for


async def collect(results: AsyncIterator[mjasync.BatchResult]) -> list[mjasync.BatchResult]:
    return [result async for result in results]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_300_prompts_through_a_5_plus_5_queue(dialect: Any) -> None:
    prompts = [f"a paper boat, style {n}" for n in range(300)]
    async with FakeProxy(dialect, job_seconds=0.02, concurrency=5, queue_size=5, seed=3) as fake:
        async with client_for(fake, retry_backoff=0.005) as mj:
            results = await collect(mj.imagine_many(prompts, max_in_flight=20, timeout=60))
    assert sorted(r.index for r in results) == list(range(300)), "every prompt exactly once"
    assert all(r.succeeded and r.error is None for r in results)
    assert not [r for r in results if isinstance(r.error, mjasync.QueueFullError)]
    assert all(r.prompt == prompts[r.index] and r.info is not None and r.info.id == r.task_id for r in results)
    assert fake.stats.accepted_submits == 300
    assert max(fake.stats.submits_by_state.values()) == 1
    assert Counter(job.prompt for job in fake.jobs.values()) == Counter(prompts), "no prompt submitted twice"
    refused = fake.stats.requests["POST /mj/submit/imagine"] - 300
    assert 0 < refused < 300, "the queue was full at times, and the batch backed off instead of hammering"


async def test_results_come_as_jobs_finish_tagged_with_their_prompt() -> None:
    prompts = ["a STUCKJOB lighthouse", "a nude statue", "a FAILJOB tram", "a red fox"]
    async with FakeProxy("extended", job_seconds=0.05) as fake, client_for(fake) as mj:
        results = await collect(mj.imagine_many(prompts, timeout=1.0))
    assert [r.index for r in results][-1] == 0, "the stuck job ends last (at its deadline)"
    by_index = {r.index: r for r in results}
    stuck, banned, failed, fox = (by_index[i] for i in range(4))
    assert isinstance(stuck.error, mjasync.WaitTimeoutError) and stuck.task_id in fake.jobs
    assert isinstance(banned.error, mjasync.BannedPromptError) and banned.task_id is None
    assert isinstance(failed.error, mjasync.TaskFailedError) and failed.task_id == failed.error.task.id
    assert fox.succeeded and fox.info is not None and fox.info.prompt == "a red fox"
    assert fake.stats.accepted_submits == 3 and fake.stats.requests["POST /mj/submit/imagine"] == 4
    assert fake.stats.requests["POST /mj/task/{id}/cancel"] == 0, "a timed-out job is not cancelled"


async def test_max_in_flight_bounds_unfinished_jobs() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake, client_for(fake) as mj:
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, sum(job.status not in ("SUCCESS", "FAILURE") for job in fake.jobs.values()))
                await asyncio.sleep(0.002)

        watcher = asyncio.get_running_loop().create_task(watch())
        results = await collect(mj.imagine_many([f"p{n}" for n in range(12)], max_in_flight=3, bot_type="NIJI_JOURNEY"))
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    assert len(results) == 12 and all(r.succeeded for r in results)
    assert 1 <= peak <= 3
    sent = [request.json or {} for request in fake.requests if request.route == "POST /mj/submit/imagine"]
    assert {body["botType"] for body in sent} == {"NIJI_JOURNEY"}


async def test_closing_early_stops_submitting_and_leaves_no_task() -> None:
    async with FakeProxy("reference", job_seconds=0.05, concurrency=2, queue_size=2) as fake, client_for(fake) as mj:
        before = asyncio.all_tasks()
        async with contextlib.aclosing(mj.imagine_many([f"p{n}" for n in range(50)], max_in_flight=4)) as results:
            async for first in results:
                assert first.succeeded
                break
        sent = fake.stats.requests["POST /mj/submit/imagine"]
        unfinished = sum(job.status not in ("SUCCESS", "FAILURE") for job in fake.jobs.values())
        ours = [t for t in asyncio.all_tasks() - before if "run_batch" in t.get_coro().__qualname__]  # type: ignore[union-attr]
        assert ours == [], "no worker left behind"
        assert len(mj._poller) == 0, "every wait was cancelled"
        await asyncio.sleep(0.2)
        # Submits cut off mid-request (at most max_in_flight) may still arrive; nothing new is sent.
        assert fake.stats.requests["POST /mj/submit/imagine"] <= sent + 4, "no submit after closing"
    assert unfinished <= 4 and len(fake.jobs) < 50
    # A submit cut off mid-request may still be recorded (as with any cancelled submit), never twice.
    assert fake.stats.accepted_submits == fake.stats.requests["POST /mj/submit/imagine"]


async def test_an_uncertain_submit_is_reported_not_resent() -> None:
    async with FakeProxy("relay", job_seconds=0.05) as fake, client_for(fake) as mj:
        fake.faults.add("reset_after_record", endpoint="submit", times=1)
        results = await collect(mj.imagine_many(["a", "b", "c"], max_in_flight=1))
    (uncertain,) = [r for r in results if r.error is not None]
    assert isinstance(uncertain.error, mjasync.SubmitUncertainError) and uncertain.index == 0
    assert fake.stats.requests["POST /mj/submit/imagine"] == 3 == fake.stats.accepted_submits
    assert max(fake.stats.submits_by_state.values()) == 1


@pytest.mark.parametrize(
    ("prompts", "kwargs"),
    [
        (["ok", ""], {}),
        (["ok", 5], {}),
        ("one string", {}),
        (["ok"], {"max_in_flight": 0}),
        (["ok"], {"max_in_flight": True}),
        (["ok"], {"timeout": -1}),
        (["ok"], {"bot_type": "DALL_E"}),
        (["ok"], {"images": ["not base64!"]}),
    ],
)
async def test_bad_input_raises_at_the_call(prompts: Any, kwargs: dict[str, Any]) -> None:
    async with FakeProxy("relay") as fake, client_for(fake) as mj:
        with pytest.raises(mjasync.InvalidRequestError):
            mj.imagine_many(prompts, **kwargs)
    assert fake.requests == []


async def test_an_empty_batch_yields_nothing() -> None:
    async with FakeProxy("relay") as fake, client_for(fake) as mj:
        assert await collect(mj.imagine_many([])) == []
    assert fake.requests == []
