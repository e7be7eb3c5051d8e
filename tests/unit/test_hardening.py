"""Regression tests for the review's findings: each failed before its fix."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import mjasync
from tests.conftest import API_KEY, BASE_URL, FAST, MockedHTTP

IMAGINE = BASE_URL + "/mj/submit/imagine"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


async def test_an_odd_lookup_answer_is_no_proof_and_nothing_is_resent(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(IMAGINE, status=502, body="<html>bad gateway</html>", content_type="text/html")
    http.post(IMAGINE, payload={"code": 1, "description": "ok", "result": "2"}, repeat=True)
    http.post(BASE_URL + "/mj/task/query", body="", repeat=True)  # an empty 200 is not a task list
    with pytest.raises(mjasync.SubmitUncertainError):
        await client.imagine("cat")
    assert len(http.calls("POST", "/mj/submit/imagine")) == 1


async def test_extended_crash_shape_is_reconciled_not_taken_as_nothing_created(
    http: MockedHTTP, client: mjasync.Client
) -> None:
    http.post(IMAGINE, status=500, payload={"success": False, "code": -1, "message": "操作失败", "timestamp": "1"})
    for path in ("/mj/task/list", "/mj/task/queue"):
        http.get(BASE_URL + path, status=404, body="", repeat=True)
    http.post(BASE_URL + "/mj/task/query", status=404, body="", repeat=True)
    with pytest.raises(mjasync.SubmitUncertainError) as caught:
        await client.imagine("cat")
    assert isinstance(caught.value.cause, mjasync.ServerError)
    assert client.stats.reconciles == 1


async def test_absurdly_deep_json_is_a_typed_error(http: MockedHTTP, client: mjasync.Client) -> None:
    http.get(BASE_URL + "/mj/task/1/fetch", body="[" * 50_000, repeat=True)  # under the mock body limit, far over the parser's depth
    with pytest.raises(mjasync.ResponseDecodeError):
        await client.fetch("1")
    client.callbacks.configure("https://bot.example/h")
    token = (client.callbacks.hook_url or "").rsplit("/", 1)[1]
    with pytest.raises(mjasync.InvalidCallbackError):
        await client.callbacks.deliver(b"[" * 50_000, token)


@pytest.mark.parametrize(
    "call",
    [
        lambda mj: mj.fetch_many("1730621718151844"),
        lambda mj: mj.fetch_many(None),
        lambda mj: mj.imagine("cat", images=5),
        lambda mj: mj.imagine("cat", extra_body={"raw": b"bytes"}),
        lambda mj: mj.fetch("1", timeout=0),
        lambda mj: mj.read_image("not-a-url"),
    ],
    ids=["one-string-id", "none", "images-int", "extra-body-bytes", "zero-timeout", "bad-url"],
)
async def test_bad_input_is_invalid_request_before_any_request(
    http: MockedHTTP, client: mjasync.Client, call: Any
) -> None:
    with pytest.raises(mjasync.InvalidRequestError):
        await call(client)
    assert http.requests == {}


async def test_authentication_error_names_the_style_and_the_servers_text(http: MockedHTTP) -> None:
    http.get(BASE_URL + "/mj/task/1/fetch", status=401, body="Authorization header missing.", content_type="text/plain")
    async with mjasync.Client(BASE_URL, API_KEY, **FAST) as mj:
        with pytest.raises(mjasync.AuthenticationError) as caught:
            await mj.fetch("1")
    message = str(caught.value)
    assert "auth='bearer'" in message and "'mj-api-secret'" in message
    assert "Authorization header missing." in message


async def test_a_task_id_cannot_steer_a_download_out_of_its_folder(
    http: MockedHTTP, client: mjasync.Client, tmp_path: Path
) -> None:
    http.get(BASE_URL + "/img.png", body=PNG, content_type="image/png")
    info = mjasync.TaskInfo(id="../../escape", status=mjasync.TaskStatus.SUCCESS, image_url=BASE_URL + "/img.png")
    path = await client.download(info, f"{tmp_path / 'out'}/")
    assert path.parent == tmp_path / "out"
    assert not (tmp_path / "escape.png").exists()


async def test_the_key_goes_only_to_base_urls_host(http: MockedHTTP, client: mjasync.Client) -> None:
    http.get("https://cdn.example/img.png", body=PNG, content_type="image/png")
    http.get(BASE_URL + "/mj/image/1", body=PNG, content_type="image/png")
    await client.read_image("https://cdn.example/img.png")
    await client.read_image(BASE_URL + "/mj/image/1")
    (foreign,) = [call for (_, url), calls in http.requests.items() if url.host == "cdn.example" for call in calls]
    assert "Authorization" not in foreign.kwargs["headers"]
    (own,) = http.calls("GET", "/mj/image/1")
    assert own.kwargs["headers"]["Authorization"] == f"Bearer {API_KEY}"


async def test_closing_the_owner_ends_the_waits_of_its_copies(http: MockedHTTP) -> None:
    http.post(BASE_URL + "/mj/task/list-by-condition", payload=[{"id": "1", "status": "IN_PROGRESS"}], repeat=True)
    owner = mjasync.Client(BASE_URL, API_KEY, **FAST)
    copy = owner.with_options(timeout=9.0)

    waiter = asyncio.ensure_future(copy.task("1").wait(timeout=None))
    await asyncio.sleep(0.05)
    await owner.close()
    with pytest.raises(mjasync.ClientClosedError):
        await asyncio.wait_for(waiter, 1)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_a_stale_modal_snapshot_does_not_end_the_next_wait(http: MockedHTTP, client: mjasync.Client) -> None:
    http.get(BASE_URL + "/mj/task/5/fetch", payload={"id": "5", "status": "MODAL"})
    http.post(BASE_URL + "/mj/task/list-by-condition", payload=[{"id": "5", "status": "SUCCESS", "progress": "100%"}],
              repeat=True)
    task = client.task("5")
    assert (await task.fetch()).status is mjasync.TaskStatus.MODAL
    assert (await task.wait(timeout=2)).succeeded, "the poll decides, not the old MODAL snapshot"


def test_secrets_stay_out_of_reprs_of_snapshots_and_of_the_client() -> None:
    mj = mjasync.Client(BASE_URL, API_KEY)
    mj.callbacks.configure("https://bot.example/h")
    hook = mj.callbacks.hook_url or ""
    token = hook.rsplit("/", 1)[1]
    info = mjasync.TaskInfo(id="1", properties={"notifyHook": str(hook)})
    for text in (repr(info), repr(vars(mj)), json.dumps(str(info))):
        assert token not in text and API_KEY not in text
    assert aiohttp  # the client was built without a running loop


async def test_query_tasks_sends_the_filters_and_reads_a_page(http: MockedHTTP, client: mjasync.Client) -> None:
    page = {"content": [{"id": "7", "status": "SUCCESS", "state": "order-1"}], "totalElements": 1}
    http.post(BASE_URL + "/mj/task/query", payload=page)
    found = await client.query_tasks(state="order-1", ids=[7], extra_body={"pageNumber": 0, "pageSize": 10})
    assert [t.id for t in found] == ["7"]
    (call,) = http.calls("POST", "/mj/task/query")
    assert json.loads(call.kwargs["data"]) == {"state": "order-1", "ids": ["7"], "pageNumber": 0, "pageSize": 10}


async def test_query_tasks_where_the_server_has_no_query_endpoint(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(BASE_URL + "/mj/task/query", status=404, body="")
    with pytest.raises(mjasync.UnsupportedEndpointError, match="plus server"):
        await client.query_tasks(state="x")
