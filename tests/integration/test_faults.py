"""One test per simulator fault kind not covered elsewhere; each fails without the SDK's handling."""

from __future__ import annotations

import asyncio

import pytest

import mjasync
from mjasync.testing import FakeProxy
from tests.conftest import eventually
from tests.integration.conftest import client_for


@pytest.mark.parametrize("kind", ["html", "empty", "http_504"])
async def test_unusable_submit_answers_are_reconciled_not_resent(kind: str) -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake:
        fake.faults.add(kind, endpoint="submit", times=1)  # type: ignore[arg-type]
        async with client_for(fake, resend_after=0.0) as mj:
            task = await mj.imagine("cat")
            assert (await task.wait(timeout=10)).succeeded
            assert mj.stats.reconciles == 1
    # html/empty/504 answer before the handler: nothing was recorded, so the complete view
    # shows no such task; with no quiet period (resend_after=0) the same tag is sent once more.
    assert fake.stats.requests["POST /mj/submit/imagine"] == 2
    assert fake.stats.accepted_submits == 1


async def test_stuck_job_ends_when_the_server_times_it_out() -> None:
    async with FakeProxy("extended", job_seconds=0.1, server_timeout=0.3) as fake:
        async with client_for(fake) as mj:
            task = await mj.imagine("STUCKJOB forever")
            with pytest.raises(mjasync.TaskFailedError) as caught:
                await task.wait(timeout=10)
    assert caught.value.task.fail_kind == "timeout"


async def test_stuck_job_without_server_timeout_hits_the_wait_deadline() -> None:
    async with FakeProxy("reference", job_seconds=0.1) as fake:
        async with client_for(fake) as mj:
            task = await mj.imagine("STUCKJOB forever")
            await eventually(lambda: fake.jobs[task.id].progress == "93%")
            with pytest.raises(mjasync.WaitTimeoutError) as caught:
                await task.wait(timeout=1.0)
            assert caught.value.last is not None and caught.value.last.progress == 93
            assert (await mj.fetch(task.id)).status is mjasync.TaskStatus.IN_PROGRESS, "the job goes on"


async def test_waits_survive_a_server_restart() -> None:
    async with FakeProxy("reference", job_seconds=0.6) as fake:
        async with client_for(fake, poll_interval=0.05) as mj:
            tasks = await asyncio.gather(*(mj.imagine(f"p{i}") for i in range(20)))
            waits = asyncio.gather(*(t.wait(timeout=10) for t in tasks))
            await asyncio.sleep(0.1)
            await fake.refuse_connections(0.4)  # the port is closed while the jobs run on
            results = await waits
    assert all(r.succeeded for r in results)


async def test_polls_failing_at_random_still_finish_every_wait() -> None:
    async with FakeProxy("reference", job_seconds=0.2, seed=9) as fake:
        for kind in ("http_500", "http_429", "malformed_json", "reset_after_record", "empty"):
            fake.faults.add(kind, endpoint="list", rate=0.1)
        async with client_for(fake, poll_interval=0.02) as mj:
            tasks = await asyncio.gather(*(mj.imagine(f"p{i}") for i in range(50)))
            results = await asyncio.gather(*(t.wait(timeout=10) for t in tasks))
    assert all(r.succeeded for r in results)


async def test_delayed_callbacks_do_not_hold_up_or_regress_a_wait() -> None:
    async with FakeProxy("reference", job_seconds=0.2, seed=4) as fake:
        fake.faults.callback_delay = 0.5
        fake.faults.callback_reorder = True
        async with client_for(fake, poll_interval=0.05) as mj:
            await mj.callbacks.serve("127.0.0.1", 0)
            task = await mj.imagine("cat")
            seen: list[str] = []
            info = await task.wait(timeout=10, on_progress=lambda i: seen.append(i.status.value))
            await asyncio.sleep(0.6)  # late callbacks arrive after the end
    assert info.succeeded and seen[-1] == "SUCCESS" and seen.count("SUCCESS") == 1
    assert task.last is not None and task.last.succeeded
