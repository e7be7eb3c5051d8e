"""Task.wait / updates / await and the batched poller, against mocked HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

import mjasync
from tests.conftest import (
    API_KEY,
    BASE_URL,
    FAST,
    SETTLE_TIMEOUT,
    MockedHTTP,
    Reached,
    callback_result,
    eventually,
)

LIST = BASE_URL + "/mj/task/list-by-condition"


def task_json(task_id: str, status: str, progress: str = "", **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "action": "IMAGINE", "status": status, "progress": progress, **extra}


class Script:
    """Answers list-by-condition from a per-id sequence of snapshots, one step per call."""

    def __init__(self, steps: dict[str, list[dict[str, Any]]]) -> None:
        self.steps = {k: iter(v) for k, v in steps.items()}
        self.current: dict[str, dict[str, Any]] = {}
        self.batches: list[list[str]] = []

    def __call__(self, url: Any, **kwargs: Any) -> Any:
        ids = json.loads(kwargs["data"])["ids"]
        self.batches.append(ids)
        answer = []
        for task_id in ids:
            steps: Iterator[dict[str, Any]] | None = self.steps.get(task_id)
            if steps is not None:
                self.current[task_id] = next(steps, {}) or self.current.get(task_id) or {}
                if self.current[task_id]:
                    answer.append(self.current[task_id])
        return callback_result(payload=answer)


async def test_wait_returns_success_and_reports_progress(http: MockedHTTP, client: mjasync.Client) -> None:
    script = Script({"1": [task_json("1", "SUBMITTED", "0%"), task_json("1", "IN_PROGRESS", "46%"),
                           task_json("1", "IN_PROGRESS", "46%"), task_json("1", "SUCCESS", "100%", imageUrl="u")]})
    http.post(LIST, callback=script, repeat=True)
    seen: list[str] = []
    info = await client.task("1").wait(timeout=5, on_progress=lambda i: seen.append(i.progress_text))
    assert info.status is mjasync.TaskStatus.SUCCESS and info.image_url == "u"
    assert seen == ["0%", "46%", "100%"], "snapshots are de-duplicated"


async def test_await_task_is_wait(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(LIST, callback=Script({"1": [task_json("1", "SUCCESS", "100%")]}), repeat=True)
    info = await client.task("1")
    assert info.succeeded


async def test_async_on_progress_is_awaited(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(LIST, callback=Script({"1": [task_json("1", "IN_PROGRESS", "15%"), task_json("1", "SUCCESS", "100%")]}),
              repeat=True)
    seen: list[int | None] = []

    async def report(info: mjasync.TaskInfo) -> None:
        await asyncio.sleep(0)
        seen.append(info.progress)

    await client.task("1").wait(on_progress=report)
    assert seen == [15, 100]


@pytest.mark.parametrize(
    ("snapshot", "error"),
    [
        (task_json("1", "FAILURE", "", failReason="任务超时"), mjasync.TaskFailedError),
        (task_json("1", "CANCEL"), mjasync.TaskCancelledError),
        (task_json("1", "MODAL"), mjasync.ActionRequiredError),
    ],
)
async def test_wait_raises_typed_errors_with_the_snapshot(
    http: MockedHTTP, client: mjasync.Client, snapshot: dict[str, Any], error: type[Exception]
) -> None:
    http.post(LIST, callback=Script({"1": [snapshot]}), repeat=True)
    with pytest.raises(error) as caught:
        await client.task("1").wait()
    assert isinstance(caught.value, mjasync.TaskFailedError | mjasync.TaskCancelledError | mjasync.ActionRequiredError)
    assert caught.value.task.id == "1"
    if error is mjasync.TaskFailedError:
        assert caught.value.task.fail_kind == "timeout"


async def test_wait_timeout_carries_the_last_snapshot_and_cancels_nothing(
    http: MockedHTTP, client: mjasync.Client
) -> None:
    http.post(LIST, callback=Script({"1": [task_json("1", "IN_PROGRESS", "93%")]}), repeat=True)
    task = client.task("1")
    with pytest.raises(mjasync.WaitTimeoutError) as caught:
        await task.wait(timeout=0.1)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.task_id == "1"
    assert caught.value.last is not None and caught.value.last.progress == 93
    assert "may still finish" in str(caught.value)
    assert not any(method == "POST" and "cancel" in str(url) for method, url in http.requests)
    assert len(client._poller) == 0, "the waiter was removed"


async def test_updates_yields_until_terminal(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(LIST, callback=Script({"1": [task_json("1", "MODAL"), task_json("1", "SUBMITTED", "0%"),
                                           task_json("1", "IN_PROGRESS", "62%"), task_json("1", "IN_PROGRESS", "46%"),
                                           task_json("1", "FAILURE")]}),
              repeat=True)
    statuses = [(i.status.value, i.progress) async for i in client.task("1").updates()]
    assert statuses == [("MODAL", None), ("SUBMITTED", 0), ("IN_PROGRESS", 62), ("FAILURE", None)], (
        "MODAL is followed through, a snapshot behind the last one is dropped"
    )


async def test_many_waiters_share_one_batched_poll(http: MockedHTTP) -> None:
    ids = [str(i) for i in range(250)]
    script = Script({i: [task_json(i, "IN_PROGRESS", "50%"), task_json(i, "SUCCESS", "100%")] for i in ids})
    http.post(LIST, callback=script, repeat=True)
    async with mjasync.Client(BASE_URL, API_KEY, **{**FAST, "poll_interval": 0.05}) as mj:
        tasks = [mj.task(i) for i in ids]
        # Two waiters on one id share the entry.
        results = await asyncio.gather(*(t.wait() for t in tasks), tasks[0].wait())
    assert all(r.succeeded for r in results)
    assert {len(batch) for batch in script.batches} <= {100, 50}
    assert len(script.batches) == 6, "3 requests a tick for 250 ids, 2 ticks"


async def test_fallback_to_per_id_fetch_when_list_endpoint_is_missing(
    http: MockedHTTP, client: mjasync.Client
) -> None:
    http.post(LIST, status=404, body="", repeat=True)
    for task_id in ("1", "2"):
        http.get(f"{BASE_URL}/mj/task/{task_id}/fetch", payload=task_json(task_id, "SUCCESS", "100%"), repeat=True)
    results = await asyncio.gather(client.task("1").wait(), client.task("2").wait())
    assert [r.id for r in results] == ["1", "2"]
    assert client._reader.batched is False
    assert len(http.calls("POST", "/mj/task/list-by-condition")) == 3, (
        "three answers in a row make the choice, and it is remembered"
    )


async def test_id_missing_from_batch_is_fetched_singly_then_declared_lost(
    http: MockedHTTP, client: mjasync.Client
) -> None:
    http.post(LIST, payload=[], repeat=True)
    http.get(BASE_URL + "/mj/task/404/fetch", body="", repeat=True)  # ref: unknown id -> empty 200
    with pytest.raises(mjasync.TaskNotFoundError):
        await client.task("404").wait(timeout=5)
    assert http.calls("GET", "/mj/task/404/fetch")


async def test_id_found_by_single_fetch_is_not_lost(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(LIST, payload=[], repeat=True)
    http.get(BASE_URL + "/mj/task/7/fetch", payload=task_json("7", "SUCCESS", "100%"), repeat=True)
    assert (await client.task("7").wait()).succeeded


async def test_failed_tick_is_retried_by_the_next_tick(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(LIST, status=502, body="<html>bad gateway</html>")
    http.post(LIST, payload=[task_json("1", "SUCCESS", "100%")])
    assert (await client.task("1").wait()).succeeded
    assert len(http.calls("POST", "/mj/task/list-by-condition")) == 2


async def test_authentication_error_fails_the_waiter(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(LIST, status=401, body="", repeat=True)
    with pytest.raises(mjasync.AuthenticationError):
        await client.task("1").wait(timeout=5)


async def test_cancelling_a_wait_removes_its_waiter_promptly(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(LIST, callback=Script({"1": [task_json("1", "IN_PROGRESS", "15%")]}), repeat=True)
    waiter = asyncio.ensure_future(client.task("1").wait())
    await asyncio.sleep(0.05)
    assert len(client._poller) == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert len(client._poller) == 0


async def test_asyncio_timeout_around_wait_propagates(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(LIST, callback=Script({"1": [task_json("1", "IN_PROGRESS", "15%")]}), repeat=True)
    with pytest.raises(TimeoutError) as caught:
        async with asyncio.timeout(0.05):
            await client.task("1").wait()
    assert not isinstance(caught.value, mjasync.WaitTimeoutError)
    assert len(client._poller) == 0


async def test_close_ends_a_pending_wait_and_leaves_no_pending_tasks(http: MockedHTTP) -> None:
    http.post(LIST, callback=Script({"1": [task_json("1", "IN_PROGRESS", "15%")]}), repeat=True)
    mj = mjasync.Client(BASE_URL, API_KEY, **FAST)
    running = Reached(15)
    waiter = asyncio.ensure_future(mj.task("1").wait(timeout=None, on_progress=running))
    await running.wait()  # the wait is pending on a running job, nobody cancelled it
    await mj.close()
    with pytest.raises(mjasync.ClientClosedError):
        await asyncio.wait_for(waiter, SETTLE_TIMEOUT)
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == []


async def test_poller_stops_when_nothing_waits(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(LIST, callback=Script({"1": [task_json("1", "SUCCESS", "100%")]}), repeat=True)
    await client.task("1").wait()
    await eventually(lambda: client._poller._task is None)
    calls = len(http.calls("POST", "/mj/task/list-by-condition"))
    await asyncio.sleep(0.05)
    assert len(http.calls("POST", "/mj/task/list-by-condition")) == calls


async def test_fetch_and_fetch_many(http: MockedHTTP, client: mjasync.Client) -> None:
    http.get(BASE_URL + "/mj/task/1/fetch", payload=task_json("1", "IN_PROGRESS", "31%"))
    info = await client.task("1").fetch()
    assert info.progress == 31
    http.post(LIST, payload=[task_json("2", "SUCCESS"), task_json("1", "SUCCESS"), task_json("99", "SUCCESS")])
    many = await client.fetch_many(["1", "2", "3", "1"])
    assert [i.id for i in many] == ["1", "2"], "input order, unknown and unasked ids left out"


@pytest.mark.parametrize(
    "answer",
    [
        {"body": ""},
        {"status": 204, "body": ""},
        {"status": 404, "payload": {"code": 3, "description": "任务不存在", "result": None}},
        {"status": 400, "payload": {"description": "task_no_found ", "type": "upstream_error", "code": 4}},
    ],
    ids=["ref-empty-200", "ext-204", "ext-404-envelope", "relay-400"],
)
async def test_fetch_unknown_id_is_task_not_found(
    http: MockedHTTP, client: mjasync.Client, answer: dict[str, Any]
) -> None:
    http.get(BASE_URL + "/mj/task/5/fetch", **answer)
    with pytest.raises(mjasync.TaskNotFoundError):
        await client.fetch("5")


async def test_html_404_is_a_configuration_hint(http: MockedHTTP, client: mjasync.Client) -> None:
    http.get(BASE_URL + "/mj/task/5/fetch", status=404, body="<html>Not Found</html>", content_type="text/html")
    with pytest.raises(mjasync.NotFoundError, match="base_url"):
        await client.fetch("5")


async def test_a_garbled_read_is_read_again(http: MockedHTTP, client: mjasync.Client) -> None:
    http.get(BASE_URL + "/mj/task/1/fetch", body='{"id": "1", "sta', content_type="application/json")
    http.get(BASE_URL + "/mj/task/1/fetch", payload=task_json("1", "SUCCESS", "100%"))
    assert (await client.fetch("1")).succeeded
    assert client.stats.retries == 1


async def test_a_new_wait_right_after_the_last_one_ended_is_polled(http: MockedHTTP) -> None:
    http.post(LIST, callback=Script({"1": [task_json("1", "SUCCESS", "100%")], "2": [task_json("2", "SUCCESS", "100%")]}),
              repeat=True)
    async with mjasync.Client(BASE_URL, API_KEY, **{**FAST, "poll_interval": 0.05}) as mj:
        await mj.task("1").wait(timeout=2)  # its waiter leaves while the poller sleeps...
        assert (await mj.task("2").wait(timeout=2)).succeeded  # ...and this one joins at once
