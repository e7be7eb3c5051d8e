"""Exactly-once submits behind hostile gateways: no job paid twice, every job reaches its caller."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

import pytest

import mjasync
from mjasync.testing import FakeProxy
from tests.conftest import FAST, SETTLE_TIMEOUT, eventually
from tests.hostile._gateway import Gateway

UPSTREAM_TIMEOUT = {"error": {"message": "upstream: read tcp: i/o timeout", "type": "upstream_error"}}
ONE_API_500 = {"error": {"message": "bad response status code 500", "type": "one_api_error",
                         "code": "bad_response_status_code"}}


def client(gateway: Gateway, **overrides: Any) -> mjasync.Client:
    fake = gateway.fake
    return mjasync.Client(gateway.url, fake.api_key, auth=fake.auth, **{**FAST, **overrides})


def assert_none_paid_twice(fake: FakeProxy) -> None:
    assert fake.stats.submits_by_state, "nothing was recorded"
    assert max(fake.stats.submits_by_state.values()) == 1, dict(fake.stats.submits_by_state)


async def found(mj: mjasync.Client, tag: str) -> mjasync.Task:
    """`find(tag)` until it returns the task (it appears late), bounded by SETTLE_TIMEOUT."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT
    while (task := await mj.find(tag)) is None:
        assert loop.time() < deadline, f"tag {tag} never found"
        await asyncio.sleep(0.01)
    return task


@pytest.mark.parametrize(("status", "body"), [(502, UPSTREAM_TIMEOUT), (500, ONE_API_500)])
async def test_gateway_json_5xx_after_forwarding_is_reconciled_not_resent(status: int, body: Any) -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake, \
            Gateway(fake, submit="json_5xx", status=status, body=body) as gateway:
        async with client(gateway) as mj:
            tasks = await asyncio.gather(*(mj.imagine(f"cat {i}") for i in range(10)))
    assert fake.stats.accepted_submits == 10
    assert {t.id for t in tasks} == set(fake.jobs)
    assert_none_paid_twice(fake)


async def test_relay_no_channel_503_is_still_resent() -> None:
    body = {"error": {"message": "当前分组 default 下对于模型 mj_imagine 无可用渠道", "type": "new_api_error"}}
    async with FakeProxy("reference", job_seconds=0.05) as fake, \
            Gateway(fake, submit="json_5xx", status=503, body=body) as gateway:
        async with client(gateway, max_retries=2) as mj:
            with pytest.raises(mjasync.ServerError):
                await mj.imagine("cat")
    assert gateway.submit_calls == 3


async def test_late_commit_is_not_resent_and_is_found_later() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake, \
            Gateway(fake, submit="late", delay=1.0) as gateway:
        async with client(gateway) as mj:
            caught = await asyncio.gather(*(mj.imagine(f"cat {i}") for i in range(5)), return_exceptions=True)
            assert all(isinstance(e, mjasync.SubmitUncertainError) for e in caught), caught
            tags = [e.state_tag for e in caught if isinstance(e, mjasync.SubmitUncertainError)]
            await gateway.settled()
            tasks = [await found(mj, tag) for tag in tags]
            await eventually(lambda: mj.stats.found_later == 5)
    assert gateway.submit_calls == 5
    assert {t.id for t in tasks} == set(fake.jobs)
    assert_none_paid_twice(fake)


async def test_resend_after_a_quiet_period_sends_once_with_the_same_tag() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake, \
            Gateway(fake, submit="late", delay=3600.0) as gateway:
        async with client(gateway, resend_after=0.2) as mj:
            with pytest.raises(mjasync.SubmitUncertainError) as caught:
                await mj.imagine("cat")
            gateway.submit = "pass"  # the first send is never forwarded; the resend is
            task = await found(mj, caught.value.state_tag)
    assert gateway.submit_calls == 2
    assert list(fake.jobs) == [task.id]
    assert_none_paid_twice(fake)


async def test_a_resend_that_fails_too_is_sent_again_after_another_quiet_period() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake, Gateway(fake) as gateway:
        fake.faults.add("http_503", "submit", times=2)  # the first send and the first resend: unrecorded
        async with client(gateway, resend_after=0.2) as mj:
            with pytest.raises(mjasync.SubmitUncertainError) as caught:
                await mj.imagine("cat")
            task = await found(mj, caught.value.state_tag)
    assert fake.stats.requests["POST /mj/submit/imagine"] == 3
    assert list(fake.jobs) == [task.id]
    assert_none_paid_twice(fake)


async def test_resend_after_none_never_resends() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake, \
            Gateway(fake, submit="late", delay=3600.0) as gateway:
        async with client(gateway, resend_after=None, reconcile_delays=(0.01,) * 20) as mj:
            with pytest.raises(mjasync.SubmitUncertainError):
                await mj.imagine("cat")
    assert gateway.submit_calls == 1


@pytest.mark.parametrize("lists", ["paged", "no_state"])
async def test_a_partial_list_is_not_a_complete_view(lists: Any) -> None:
    async with FakeProxy("reference", job_seconds=60) as fake, \
            Gateway(fake, submit="pass", delay=0.5, lists=lists) as gateway:
        async with client(gateway, resend_after=0.05) as mj:
            gateway.submit = "pass"  # more than a page of other tasks first
            await asyncio.gather(*(mj.imagine(f"filler {i}") for i in range(12)))
            gateway.submit = "late"
            caught = await asyncio.gather(*(mj.imagine(f"cat {i}") for i in range(5)), return_exceptions=True)
            await gateway.settled()
    assert all(isinstance(e, mjasync.SubmitUncertainError) for e in caught), caught
    assert fake.stats.accepted_submits == 17
    assert_none_paid_twice(fake)


async def test_plus_query_finds_the_tag_when_the_caller_set_state() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake, \
            Gateway(fake, submit="json_5xx", body=UPSTREAM_TIMEOUT, plus_query=True) as gateway:
        async with client(gateway) as mj:
            tasks = await asyncio.gather(*(mj.imagine(f"cat {i}", state=f"order-{i}") for i in range(10)))
    assert {t.id for t in tasks} == set(fake.jobs)
    assert fake.stats.accepted_submits == 10
    assert_none_paid_twice(fake)


def extra(record: logging.LogRecord, key: str) -> str | None:
    """A field the SDK's log record carries (`extra=`): `task_id`, `state_tag`."""
    value = record.__dict__.get(key)
    return str(value) if value else None


def reported(caplog: pytest.LogCaptureFixture) -> Callable[[], set[str]]:
    """Task ids the SDK logged for jobs whose caller was not told (cancelled, batch closed)."""
    return lambda: {task_id for r in caplog.records if (task_id := extra(r, "task_id"))}


async def test_a_cancelled_submit_is_reconciled_in_the_background(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mjasync")
    async with FakeProxy("reference", job_seconds=0.05) as fake, \
            Gateway(fake, submit="slow", delay=2.0) as gateway:
        async with client(gateway) as mj:
            for i in range(10):
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await mj.imagine(f"cat {i}")
            await eventually(lambda: fake.stats.accepted_submits == 10)
            await eventually(lambda: reported(caplog)() >= set(fake.jobs))
            tags = {extra(r, "state_tag"): extra(r, "task_id") for r in caplog.records if extra(r, "task_id")}
            for tag, task_id in tags.items():
                assert tag is not None
                task = await mj.find(tag)
                assert task is not None and task.id == task_id
    assert_none_paid_twice(fake)


async def test_breaking_out_of_imagine_many_reports_every_accepted_job(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mjasync")
    async with FakeProxy("reference", job_seconds=0.3) as fake, Gateway(fake) as gateway:
        async with client(gateway) as mj:
            yielded = set()
            async with aclosing(mj.imagine_many([f"cat {i}" for i in range(30)], max_in_flight=20)) as results:
                async for result in results:
                    assert result.task_id is not None
                    yielded.add(result.task_id)
                    if len(yielded) == 3:
                        break
            await eventually(lambda: yielded | reported(caplog)() >= set(fake.jobs))
    assert_none_paid_twice(fake)


async def test_code_9_after_recording_is_reconciled_and_never_resent() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake, Gateway(fake, submit="code9") as gateway:
        async with client(gateway) as mj:
            tasks = await asyncio.gather(*(mj.imagine(f"cat {i}") for i in range(5)))
    assert gateway.submit_calls == 5
    assert {t.id for t in tasks} == set(fake.jobs)
    assert_none_paid_twice(fake)


async def test_no_account_free_is_resent_with_backoff() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake, \
            Gateway(fake, submit="no_account", times=2) as gateway:
        async with client(gateway, max_retries=2) as mj:
            task = await mj.imagine("cat")
    assert gateway.submit_calls == 3
    assert list(fake.jobs) == [task.id]


async def test_no_account_free_ends_as_account_unavailable() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake, Gateway(fake, submit="no_account") as gateway:
        async with client(gateway, max_retries=2) as mj:
            with pytest.raises(mjasync.AccountUnavailableError) as caught:
                await mj.imagine("cat")
    assert isinstance(caught.value, mjasync.ProxyResultError)
    assert gateway.submit_calls == 3
    assert fake.stats.accepted_submits == 0
