"""Exactly one recorded job per submit, whatever the network does (simulator faults, loopback)."""

from __future__ import annotations

import asyncio

import pytest

import mjasync
from mjasync.testing import FakeProxy
from tests.conftest import eventually
from tests.integration.conftest import client_for


def assert_one_job_per_tag(fake: FakeProxy) -> None:
    assert fake.stats.submits_by_state, "nothing was recorded"
    assert max(fake.stats.submits_by_state.values()) == 1


async def test_reset_after_record_is_found_by_tag_not_resent() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake:
        fake.faults.add("reset_after_record", endpoint="submit", times=1)
        async with client_for(fake) as mj:
            task = await mj.imagine("cat")
            assert task.id in fake.jobs
            assert (await task.wait(timeout=10)).succeeded
            assert mj.stats.reconciled == 1
    assert fake.stats.requests["POST /mj/submit/imagine"] == 1
    assert fake.stats.accepted_submits == 1
    assert_one_job_per_tag(fake)


async def test_reset_after_record_on_extended_is_found_in_the_partial_list() -> None:
    async with FakeProxy("extended", job_seconds=0.05) as fake:
        fake.faults.add("reset_after_record", endpoint="submit", times=1)
        async with client_for(fake) as mj:
            task = await mj.imagine("cat")
    assert task.id in fake.jobs
    assert fake.stats.accepted_submits == 1
    assert_one_job_per_tag(fake)


async def test_reset_after_record_on_a_relay_raises_uncertain_and_never_resends() -> None:
    async with FakeProxy("relay", job_seconds=0.05) as fake:
        fake.faults.add("reset_after_record", endpoint="submit", times=1)
        async with client_for(fake) as mj:
            with pytest.raises(mjasync.SubmitUncertainError) as caught:
                await mj.imagine("cat")
    (job,) = fake.jobs.values()
    assert job.state is not None and job.state.endswith(caught.value.state_tag)
    assert fake.stats.requests["POST /mj/submit/imagine"] == 1
    assert fake.stats.accepted_submits == 1


async def test_reset_before_record_on_reference_is_resent_once_after_a_complete_lookup() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake:
        fake.faults.add("reset_before_record", endpoint="submit", times=1)
        async with client_for(fake, resend_after=0.0) as mj:
            task = await mj.imagine("cat")
    assert task.id in fake.jobs
    assert fake.stats.requests["POST /mj/submit/imagine"] == 2
    assert fake.stats.accepted_submits == 1
    assert_one_job_per_tag(fake)


async def test_ambiguous_gateway_500_on_extended_is_uncertain_with_nothing_recorded() -> None:
    async with FakeProxy("extended", job_seconds=0.05) as fake:
        fake.faults.add("http_502", endpoint="submit", times=1)
        async with client_for(fake) as mj:
            with pytest.raises(mjasync.SubmitUncertainError):
                await mj.imagine("cat")
    assert fake.stats.requests["POST /mj/submit/imagine"] == 1
    assert fake.stats.accepted_submits == 0


async def test_malformed_answer_is_reconciled() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake:
        fake.faults.add("malformed_json", endpoint="submit", times=1)
        async with client_for(fake) as mj:
            task = await mj.imagine("cat")
    assert task.id in fake.jobs
    assert fake.stats.requests["POST /mj/submit/imagine"] == 1
    assert_one_job_per_tag(fake)


@pytest.mark.parametrize("dialect", ["reference", "extended", "relay"])
async def test_429_is_resent(dialect: str) -> None:
    async with FakeProxy(dialect, job_seconds=0.05) as fake:  # type: ignore[arg-type]
        fake.faults.add("http_429", endpoint="submit", times=2)
        async with client_for(fake) as mj:
            task = await mj.imagine("cat")
            assert mj.stats.retries == 2
    assert task.id in fake.jobs
    assert fake.stats.requests["POST /mj/submit/imagine"] == 3
    assert_one_job_per_tag(fake)


async def test_refused_connection_is_resent() -> None:
    async with FakeProxy("relay", job_seconds=0.05) as fake:
        async with client_for(fake, retry_backoff=0.01, max_retries=1000) as mj:
            await fake.stop_listening()
            submit = asyncio.ensure_future(mj.imagine("cat"))
            # listen again only once a refused attempt was retried (not after a guessed time)
            await eventually(lambda: mj.stats.retries >= 1)
            await fake.start_listening()
            task = await submit
    assert task.id in fake.jobs
    assert fake.stats.accepted_submits == 1
    assert_one_job_per_tag(fake)


async def test_slow_answer_past_the_timeout_is_reconciled_not_resent() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake:
        fake.faults.add("slow", endpoint="submit", times=1, delay=0.5)
        async with client_for(fake, timeout=0.2) as mj:
            task = await mj.imagine("cat")
            await asyncio.sleep(0)
    assert task.id in fake.jobs
    assert fake.stats.requests["POST /mj/submit/imagine"] == 1
    assert_one_job_per_tag(fake)


async def test_many_concurrent_submits_with_faults_record_one_job_each() -> None:
    async with FakeProxy("reference", job_seconds=0.05, seed=3) as fake:
        fake.faults.add("reset_after_record", endpoint="submit", rate=0.1)
        fake.faults.add("http_429", endpoint="submit", rate=0.1)
        async with client_for(fake, max_retries=5) as mj:
            results = await asyncio.gather(*(mj.imagine(f"p{i}") for i in range(100)), return_exceptions=True)
    tasks = [r for r in results if isinstance(r, mjasync.Task)]
    assert len(tasks) == 100, [r for r in results if not isinstance(r, mjasync.Task)]
    assert len({t.id for t in tasks}) == 100
    assert fake.stats.accepted_submits == 100
    assert_one_job_per_tag(fake)


async def test_closing_the_client_during_a_look_up_ends_the_submit_with_a_typed_error() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake:
        fake.faults.add("reset_after_record", endpoint="submit", times=1)
        fake.faults.add("slow", endpoint="task_list", delay=30.0)  # the look-up hangs
        mj = client_for(fake, reconcile="list-scan", reconcile_delays=(0.01,))
        submit = asyncio.ensure_future(mj.imagine("cat"))
        await eventually(lambda: fake.stats.requests["GET /mj/task/list"] == 1)
        await mj.close()
        with pytest.raises(mjasync.SubmitUncertainError) as caught:  # not a bare CancelledError
            await submit
    assert isinstance(caught.value.__cause__, mjasync.ClientClosedError)
