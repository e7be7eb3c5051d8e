"""The SDK end to end against FakeProxy in each dialect, over loopback."""

from __future__ import annotations

import asyncio
import math

import pytest

import mjasync
from mjasync.testing import FakeProxy
from tests.integration.conftest import client_for


async def test_imagine_wait_and_image(fake: FakeProxy, mj: mjasync.Client) -> None:
    task = await mj.imagine("a red fox in snow")
    assert task.id in fake.jobs
    seen: list[str] = []
    info = await task.wait(timeout=10, on_progress=lambda i: seen.append(i.status.value))
    assert info.status is mjasync.TaskStatus.SUCCESS and info.progress == 100
    assert seen[-1] == "SUCCESS" and len(seen) >= 2
    png = await mj.read_image(info)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert fake.stats.accepted_submits == 1


async def test_state_round_trips_through_the_server(fake: FakeProxy, mj: mjasync.Client) -> None:
    task = await mj.imagine("cat", state="order-17")
    info = await task.wait(timeout=10)
    assert info.state == "order-17"
    assert info.state_tag is not None and info.state_tag.startswith("mja-")


async def test_rebuilt_handle_follows_the_same_task(fake: FakeProxy, mj: mjasync.Client) -> None:
    task_id = (await mj.imagine("cat")).id
    again = mj.task(task_id)
    statuses = [u.status.value async for u in again.updates(timeout=10)]
    assert statuses[-1] == "SUCCESS"
    assert again.last is not None and again.last.id == task_id


async def test_one_thousand_waits_cost_at_most_ten_requests_a_tick() -> None:
    async with FakeProxy("reference", job_seconds=0.5, seed=1) as fake:
        async with client_for(fake, poll_interval=0.1) as mj:
            tasks = await asyncio.gather(*(mj.imagine(f"prompt {i}") for i in range(1000)))
            fake.stats.reset()
            results = await asyncio.gather(*(t.wait(timeout=30) for t in tasks))
            ticks = mj._poller.ticks
    assert all(r.succeeded for r in results) and len(results) == 1000
    assert max(fake.stats.list_batches) <= 100
    polls = fake.stats.requests["POST /mj/task/list-by-condition"]
    assert polls <= ticks * math.ceil(1000 / 100)
    assert fake.stats.requests["GET /mj/task/{id}/fetch"] == 0


async def test_list_by_condition_missing_falls_back_to_fetch() -> None:
    async with FakeProxy("extended", job_seconds=0.05, list_by_condition=False) as fake:
        async with client_for(fake) as mj:
            tasks = await asyncio.gather(*(mj.imagine(f"p{i}") for i in range(5)))
            results = await asyncio.gather(*(t.wait(timeout=10) for t in tasks))
    assert all(r.succeeded for r in results)
    assert fake.stats.requests["POST /mj/task/list-by-condition"] == 3  # three 404s in a row decide
    assert fake.stats.requests["GET /mj/task/{id}/fetch"] >= 5


async def test_unknown_id_is_task_not_found(fake: FakeProxy, mj: mjasync.Client) -> None:
    with pytest.raises(mjasync.TaskNotFoundError):
        await mj.fetch("1111111111111111")


async def test_wait_on_unknown_id_gives_up_after_missing_after(fake: FakeProxy, mj: mjasync.Client) -> None:
    with pytest.raises(mjasync.TaskNotFoundError):
        await mj.task("2222222222222222").wait(timeout=10)


async def test_wrong_key_is_an_authentication_error(fake: FakeProxy) -> None:
    async with mjasync.Client(fake.url, "wrong", auth=fake.auth, max_retries=0) as mj:
        with pytest.raises(mjasync.AuthenticationError):
            await mj.imagine("cat")
    assert fake.stats.accepted_submits == 0


async def test_banned_word(fake: FakeProxy, mj: mjasync.Client) -> None:
    with pytest.raises(mjasync.BannedPromptError) as caught:
        await mj.imagine("a nude statue")
    # A relay's 400 body has no properties: its text says banned, nothing says which word.
    assert caught.value.banned_word == (None if fake.dialect == "relay" else "nude")
    assert fake.stats.accepted_submits == 0


async def test_failed_job_raises_task_failed(fake: FakeProxy, mj: mjasync.Client) -> None:
    task = await mj.imagine("FAILJOB please")
    with pytest.raises(mjasync.TaskFailedError) as caught:
        await task.wait(timeout=10)
    assert caught.value.task.fail_reason


async def test_invalid_input_sends_nothing(fake: FakeProxy, mj: mjasync.Client) -> None:
    for bad in ("", "  "):
        with pytest.raises(mjasync.InvalidRequestError):
            await mj.imagine(bad)
    with pytest.raises(mjasync.InvalidRequestError):
        await mj.imagine("cat", images=["%%%"])
    with pytest.raises(mjasync.InvalidRequestError):
        await mj.imagine("cat", bot_type="OTHER")  # type: ignore[arg-type]
    assert fake.stats.total_requests == 0


async def test_queue_limit_codes_are_retried_then_queue_full() -> None:
    async with FakeProxy("reference", job_seconds=5, concurrency=1, queue_size=1) as fake:
        async with client_for(fake) as mj:
            first = await mj.imagine("one")
            second = await mj.imagine("two")
            assert second.submit_result is not None and second.submit_result.code == 22
            assert second.submit_result.queue_position is not None
            with pytest.raises(mjasync.QueueFullError):
                await mj.imagine("three")
            assert first.id != second.id
    assert fake.stats.accepted_submits == 2
    assert fake.stats.requests["POST /mj/submit/imagine"] == 2 + 3  # 23 resent max_retries times
