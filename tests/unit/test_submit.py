"""Submit: accepted codes, typed errors, safe resends, reconcile by state tag (aioresponses)."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import pytest

import mjasync
from mjasync._convert import split_state
from tests.conftest import BASE_URL, MockedHTTP, callback_result

IMAGINE = BASE_URL + "/mj/submit/imagine"


def sent_bodies(http: MockedHTTP, path: str = "/mj/submit/imagine") -> list[dict[str, Any]]:
    return [json.loads(call.kwargs["data"]) for call in http.calls("POST", path)]


async def test_accepted_imagine_returns_task_with_server_id(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(IMAGINE, payload={"code": 1, "description": "Submit success", "result": "1730621718151844"})
    task = await client.imagine("a red fox in snow")
    assert isinstance(task, mjasync.Task)
    assert task.id == "1730621718151844"
    assert task.submit_result is not None and task.submit_result.code == 1
    (body,) = sent_bodies(http)
    assert body["prompt"] == "a red fox in snow"
    assert body["botType"] == "MID_JOURNEY"
    assert split_state(body["state"])[1] is not None


@pytest.mark.parametrize(
    ("payload", "queue_position"),
    [
        ({"code": 21, "description": "任务已存在", "result": "0741798445574458"}, None),
        (
            {"code": 22, "description": "排队中，前面还有1个任务", "result": "0741798445574458",
             "properties": {"numberOfQueues": 1}},
            1,
        ),
        ({"code": 1, "description": "成功", "result": 741798445574458}, None),
    ],
)
async def test_codes_21_and_22_and_numeric_ids_are_accepted(
    http: MockedHTTP, client: mjasync.Client, payload: dict[str, Any], queue_position: int | None
) -> None:
    http.post(IMAGINE, payload=payload)
    task = await client.imagine("cat")
    assert task.id == str(payload["result"])
    assert task.submit_result is not None
    assert task.submit_result.queue_position == queue_position


async def test_code_23_is_resent_with_backoff_then_queue_full(http: MockedHTTP, client: mjasync.Client) -> None:
    body = {"code": 23, "description": "队列已满，请稍后尝试", "result": None, "properties": {}}
    http.post(IMAGINE, payload=body, repeat=True)
    with pytest.raises(mjasync.QueueFullError) as caught:
        await client.imagine("cat")
    assert caught.value.code == 23
    assert caught.value.body is not None and json.loads(caught.value.body) == body
    assert len(http.calls("POST", "/mj/submit/imagine")) == 3  # 1 + max_retries
    assert (client.stats.requests, client.stats.retries) == (3, 2)


async def test_code_23_then_success_returns_the_task(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(IMAGINE, payload={"code": 23, "description": "队列已满", "result": None})
    http.post(IMAGINE, payload={"code": 1, "description": "ok", "result": "42"})
    task = await client.imagine("cat")
    assert task.id == "42"
    states = {b["state"] for b in sent_bodies(http)}
    assert len(states) == 1, "a resend keeps the same state tag"


async def test_code_9_with_queue_full_text_is_queue_full(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(IMAGINE, payload={"code": 9, "description": "提交失败，队列已满，请稍后重试", "result": None}, repeat=True)
    with pytest.raises(mjasync.QueueFullError):
        await client.imagine("cat")


async def test_banned_prompt_carries_the_word_and_is_not_retried(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(
        IMAGINE,
        payload={"code": 24, "description": "可能包含敏感词", "result": None,
                 "properties": {"promptEn": "nude body", "bannedWord": "nude"}},
        repeat=True,
    )
    with pytest.raises(mjasync.BannedPromptError) as caught:
        await client.imagine("nude body")
    assert caught.value.banned_word == "nude"
    assert "bannedWord" in json.loads(caught.value.body or "{}")["properties"]
    assert len(http.calls("POST", "/mj/submit/imagine")) == 1


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"code": 4, "description": "prompt不能为空", "result": None, "properties": {}}, mjasync.ValidationFailedError),
        ({"code": 3, "description": "关联任务不存在或已失效", "result": None}, mjasync.TaskNotFoundError),
    ],
)
async def test_other_codes_raise_typed_errors_once(
    http: MockedHTTP, client: mjasync.Client, payload: dict[str, Any], error: type[Exception]
) -> None:
    http.post(IMAGINE, payload=payload, repeat=True)
    with pytest.raises(error) as caught:
        await client.imagine("cat")
    assert isinstance(caught.value, mjasync.ProxyResultError)
    assert caught.value.code == payload["code"]
    assert caught.value.body == json.dumps(payload)
    assert len(http.calls("POST", "/mj/submit/imagine")) == 1


@pytest.mark.parametrize("text", ["无可用的账号实例", "账号不可用: 1234"])
async def test_no_free_account_is_resent_then_raised(http: MockedHTTP, client: mjasync.Client, text: str) -> None:
    http.post(IMAGINE, payload={"code": 3, "description": text, "result": None}, repeat=True)
    with pytest.raises(mjasync.AccountUnavailableError):
        await client.imagine("cat")
    assert len(http.calls("POST", "/mj/submit/imagine")) == client.options.max_retries + 1


async def test_relay_400_envelope_is_classified_by_code(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(IMAGINE, status=400, payload={"description": "quota_not_enough ", "type": "upstream_error", "code": 4})
    with pytest.raises(mjasync.ValidationFailedError) as caught:
        await client.imagine("cat")
    assert caught.value.status_code == 400


async def test_ext_result_shape_is_a_typed_error(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(IMAGINE, payload={"success": False, "code": -1, "message": "并发数已达上限", "timestamp": "6386"}, repeat=True)
    with pytest.raises(mjasync.QueueFullError):
        await client.imagine("cat")


async def test_connection_refused_and_429_are_resent(http: MockedHTTP, client: mjasync.Client) -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("proxy.test", 80, False, True, None, None, None),
        OSError(111, "Connection refused"),
    )
    http.post(IMAGINE, exception=refused)
    http.post(IMAGINE, status=429, body="")
    http.post(IMAGINE, payload={"code": 1, "description": "ok", "result": "7"})
    task = await client.imagine("cat")
    assert task.id == "7"
    assert len(http.calls("POST", "/mj/submit/imagine")) == 3


async def test_connect_timeout_is_resent(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(IMAGINE, exception=aiohttp.ConnectionTimeoutError("connect timed out"))
    http.post(IMAGINE, payload={"code": 1, "description": "ok", "result": "8"})
    assert (await client.imagine("cat")).id == "8"


async def test_rate_limit_exhausted_raises_rate_limit_error(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(IMAGINE, status=429, payload={"error": {"message": "too many", "type": "new_api_error"}}, repeat=True)
    with pytest.raises(mjasync.RateLimitError) as caught:
        await client.imagine("cat")
    assert "too many" in str(caught.value)


def _tagged_task(state: str, task_id: str = "555") -> dict[str, Any]:
    return {"id": task_id, "action": "IMAGINE", "status": "SUBMITTED", "state": state, "progress": "0%"}


@pytest.mark.parametrize(
    "failure",
    [
        {"exception": aiohttp.ServerDisconnectedError()},
        {"exception": aiohttp.SocketTimeoutError("read timed out")},
        {"status": 502, "body": "<html>Bad Gateway</html>", "content_type": "text/html"},
        {"status": 200, "body": '{"code":1,"descr', "content_type": "application/json"},
        {"payload": {"code": 1, "description": "ok", "result": None}},
        {"payload": {"code": 5, "description": "do_request_failed", "result": None}},
    ],
    ids=["reset", "read-timeout", "html-502", "truncated-json", "accepted-without-id", "relay-code-5"],
)
async def test_ambiguous_failure_is_never_resent_and_is_found_by_tag(
    http: MockedHTTP, client: mjasync.Client, failure: dict[str, Any]
) -> None:
    http.post(IMAGINE, **failure)

    def listing(url: Any, **kwargs: Any) -> Any:
        return callback_result(payload=[_tagged_task(sent_bodies(http)[0]["state"])])

    http.post(BASE_URL + "/mj/task/query", status=404, body="")
    http.get(BASE_URL + "/mj/task/list", callback=listing)
    http.get(BASE_URL + "/mj/task/queue", payload=[])
    task = await client.imagine("cat")
    assert task.id == "555"
    assert len(http.calls("POST", "/mj/submit/imagine")) == 1
    assert (client.stats.reconciles, client.stats.reconciled, client.stats.retries) == (1, 1, 0)


async def test_ambiguous_failure_not_found_on_partial_view_raises_uncertain(
    http: MockedHTTP, client: mjasync.Client
) -> None:
    http.post(IMAGINE, exception=aiohttp.ServerDisconnectedError())
    http.post(BASE_URL + "/mj/task/query", status=404, body="", repeat=True)
    http.get(BASE_URL + "/mj/task/list", payload=[], repeat=True)
    http.get(BASE_URL + "/mj/task/queue", status=404, body="", repeat=True)
    with pytest.raises(mjasync.SubmitUncertainError) as caught:
        await client.imagine("cat")
    assert re.fullmatch(r"mja-[0-9a-f]{32}", caught.value.state_tag)
    assert isinstance(caught.value.cause, mjasync.APIConnectionError)
    assert len(http.calls("POST", "/mj/submit/imagine")) == 1


async def test_ambiguous_failure_with_no_lookup_raises_uncertain_without_resend(
    http: MockedHTTP, client: mjasync.Client
) -> None:
    http.post(IMAGINE, status=500, body="")
    for path in ("/mj/task/list", "/mj/task/queue"):
        http.get(BASE_URL + path, status=404, body="", repeat=True)
    http.post(BASE_URL + "/mj/task/query", status=404, body="", repeat=True)
    with pytest.raises(mjasync.SubmitUncertainError):
        await client.imagine("cat")
    assert len(http.calls("POST", "/mj/submit/imagine")) == 1


async def test_not_found_in_a_complete_view_is_resent_once_with_the_same_tag(
    http: MockedHTTP, client: mjasync.Client
) -> None:
    client = client.with_options(resend_after=0.0)  # no quiet period: resend at the first complete view
    http.post(IMAGINE, exception=aiohttp.ServerDisconnectedError())
    http.post(IMAGINE, payload={"code": 1, "description": "ok", "result": "9"})
    http.post(BASE_URL + "/mj/task/query", status=404, body="", repeat=True)
    http.get(BASE_URL + "/mj/task/list", payload=[], repeat=True)
    http.get(BASE_URL + "/mj/task/queue", payload=[], repeat=True)
    task = await client.imagine("cat")
    assert task.id == "9"
    first, second = sent_bodies(http)
    assert first["state"] == second["state"]


async def test_plus_query_finds_the_tag(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(IMAGINE, status=504, body="")

    def query(url: Any, **kwargs: Any) -> Any:
        tag = json.loads(kwargs["data"])["state"]
        return callback_result(payload={"content": [_tagged_task("mine:" + tag, "321")], "totalElements": 1})

    http.post(BASE_URL + "/mj/task/query", callback=query)
    task = await client.imagine("cat", state="mine")
    assert task.id == "321"


async def test_callers_state_is_merged_reversibly(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(IMAGINE, payload={"code": 1, "description": "ok", "result": "1"})
    await client.imagine("cat", state="order-17")
    (body,) = sent_bodies(http)
    assert split_state(body["state"])[0] == "order-17"


async def test_complete_view_resends_are_one_per_quiet_period_and_keep_the_tag(
    http: MockedHTTP, client: mjasync.Client
) -> None:
    client = client.with_options(resend_after=0.0, reconcile_delays=(0.01, 0.01, 0.01))
    http.post(IMAGINE, exception=aiohttp.ServerDisconnectedError(), repeat=True)
    http.post(BASE_URL + "/mj/task/query", status=404, body="", repeat=True)
    http.get(BASE_URL + "/mj/task/list", payload=[], repeat=True)
    http.get(BASE_URL + "/mj/task/queue", payload=[], repeat=True)
    with pytest.raises(mjasync.SubmitUncertainError) as caught:
        await client.imagine("cat")
    bodies = sent_bodies(http)
    assert len(bodies) == 4, "the first send, then one after each look-up (a quiet period of 0 s)"
    assert {split_state(b["state"])[1] for b in bodies} == {caught.value.state_tag}
    assert client.stats.reconciles == 1, "one reconcile per submit, the resend included"


async def test_a_task_in_both_list_and_queue_is_adopted_once(
    http: MockedHTTP, client: mjasync.Client, caplog: pytest.LogCaptureFixture
) -> None:
    http.post(IMAGINE, exception=aiohttp.ServerDisconnectedError())

    def listing(url: Any, **kwargs: Any) -> Any:
        return callback_result(payload=[_tagged_task(sent_bodies(http)[0]["state"])])

    http.post(BASE_URL + "/mj/task/query", status=404, body="")
    http.get(BASE_URL + "/mj/task/list", callback=listing)
    http.get(BASE_URL + "/mj/task/queue", callback=listing)
    assert (await client.imagine("cat")).id == "555"
    assert "matches" not in caplog.text
