"""FakeProxy seen from a raw aiohttp client: dialects, job lifecycle, queue, faults, callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import pytest
from aiohttp import web

from mjasync.testing import FakeProxy, serve
from tests.conftest import SETTLE_TIMEOUT, eventually

Dialect = Literal["reference", "extended", "relay"]
DIALECTS: tuple[Dialect, ...] = ("reference", "extended", "relay")
STEPS = ["0%", "15%", "31%", "46%", "62%", "77%", "93%", "100%"]
PNG = b"\x89PNG\r\n\x1a\n"
DATA_URL = "data:image/png;base64,iVBORw0KGgo="
Client = tuple[FakeProxy, aiohttp.ClientSession]


def auth_headers(fake: FakeProxy) -> dict[str, str]:
    key = fake.api_key or ""
    name, value = {
        "mj-api-secret": ("mj-api-secret", key),
        "authorization": ("Authorization", key),
        "bearer": ("Authorization", f"Bearer {key}"),
    }[fake.auth]
    return {name: value}


@contextlib.asynccontextmanager
async def proxy(dialect: Dialect = "reference", **options: Any) -> AsyncIterator[Client]:
    """A started FakeProxy (fast clock) and a session sending its key in the dialect's style."""
    options.setdefault("job_seconds", 0.05)
    async with (
        FakeProxy(dialect, **options) as fake,
        aiohttp.ClientSession(headers=auth_headers(fake)) as session,
    ):
        yield fake, session


@pytest.fixture(params=DIALECTS)
async def client(request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    async with proxy(request.param, seed=7) as pair:
        yield pair


async def post(client: Client, path: str, body: Any) -> tuple[int, Any]:
    """POST JSON; returns the status and the decoded body (raw text when it is not JSON)."""
    fake, session = client
    async with session.post(f"{fake.url}{path}", json=body) as r:
        text = await r.text()
    try:
        return r.status, json.loads(text)
    except ValueError:
        return r.status, text


async def submit(client: Client, **body: Any) -> dict[str, Any]:
    _, answer = await post(client, "/mj/submit/imagine", {"prompt": "cat", **body})
    assert isinstance(answer, dict)
    return answer


async def fetch(client: Client, task_id: Any) -> dict[str, Any]:
    fake, session = client
    async with session.get(f"{fake.url}/mj/task/{task_id}/fetch") as r:
        task: dict[str, Any] = await r.json()
        return task


async def wait_done(client: Client, task_id: Any) -> list[dict[str, Any]]:
    """Poll until SUCCESS/FAILURE; returns every distinct (status, progress) snapshot seen."""

    async def poll() -> list[dict[str, Any]]:
        seen = [await fetch(client, task_id)]
        while seen[-1]["status"] not in ("SUCCESS", "FAILURE"):
            await asyncio.sleep(0.002)
            task = await fetch(client, task_id)
            if (task["status"], task["progress"]) != (seen[-1]["status"], seen[-1]["progress"]):
                seen.append(task)
        return seen

    return await asyncio.wait_for(poll(), SETTLE_TIMEOUT)


# --- auth ---

KEY = "sk-fake-key"
AUTH_CASES: dict[Dialect, tuple[list[dict[str, str]], list[dict[str, str]]]] = {
    "reference": (
        [{"mj-api-secret": KEY}],
        [{}, {"Authorization": KEY}, {"mj-api-secret": "wrong"}],
    ),
    "extended": (
        [{"Authorization": KEY}, {"mj-api-secret": KEY}],
        [{}, {"Authorization": f"Bearer {KEY}"}],
    ),
    "relay": (
        [{"Authorization": f"Bearer {KEY}"}, {"Authorization": KEY}, {"mj-api-secret": KEY}],
        [{}, {"Authorization": "Bearer wrong"}],
    ),
}


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_auth_accepts_and_rejects_per_dialect(dialect: Dialect) -> None:
    good, bad = AUTH_CASES[dialect]
    async with FakeProxy(dialect) as fake, aiohttp.ClientSession() as s:
        url = f"{fake.url}/mj/task/list-by-condition"
        for headers in good:
            async with s.post(url, json={"ids": []}, headers=headers) as r:
                assert (r.status, await r.json()) == (200, [])
        for headers in bad:
            async with s.post(url, json={"ids": []}, headers=headers) as r:
                status, content_type, text = r.status, r.content_type, await r.text()
            assert status == 401
            if dialect == "reference":
                assert text == ""
            elif dialect == "extended":
                assert (content_type, text) == ("text/plain", "Authorization header missing.")
            else:
                error = json.loads(text)["error"]
                assert error["type"] == "new_api_error" and error["message"].startswith("无效的令牌")
        secrets = [
            value
            for request in fake.requests
            for name, value in request.headers.items()
            if name.lower() in ("authorization", "mj-api-secret")
        ]
        assert secrets and set(secrets) == {"***"}
    assert (
        fake.auth == {"reference": "mj-api-secret", "extended": "authorization", "relay": "bearer"}[dialect]
    )


async def test_open_server_needs_no_key() -> None:
    async with FakeProxy(api_key=None) as fake, aiohttp.ClientSession() as s:
        assert (await submit((fake, s)))["code"] == 1


# --- lifecycle ---


async def test_imagine_runs_to_success_with_a_real_png(client: Client) -> None:
    fake = client[0]
    answer = await submit(client, state="tag-1")
    assert answer["code"] == 1 and "discordInstanceId" in answer["properties"]
    assert isinstance(answer["result"], str)
    task_id = str(answer["result"])
    assert len(task_id) == 16 and task_id.isdigit()

    seen = await wait_done(client, task_id)
    progress = [t["progress"] for t in seen if t["status"] in ("SUBMITTED", "IN_PROGRESS", "SUCCESS")]
    assert progress == [p for p in STEPS if p in progress] and progress[-1] == "100%"  # polling may skip
    done = seen[-1]
    assert done["state"] == "tag-1" and done["finishTime"] >= done["startTime"] >= done["submitTime"] > 0
    if fake.dialect == "reference":
        assert "buttons" not in done and done["failReason"] is None
    else:
        labels = [b["label"] or b["emoji"] for b in done["buttons"]]
        assert labels == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
        assert done["buttons"][0]["customId"].startswith("MJ::JOB::upsample::1::")
    if fake.dialect == "extended":
        assert done["isCompleted"] is True and done["useTime"].endswith(" s")
    if fake.dialect == "relay":
        assert done["failReason"] == "" and done["properties"] == {"finalPrompt": "cat", "finalZhPrompt": ""}

    async with aiohttp.ClientSession() as anonymous, anonymous.get(done["imageUrl"]) as r:
        assert (r.status, r.content_type) == (200, "image/png")
        png = await r.read()
    assert png.startswith(PNG) and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (256, 256)
    assert fake.stats.accepted_submits == 1 and fake.stats.submits_by_state == {"tag-1": 1}
    assert fake.jobs[task_id].status == "SUCCESS" and fake.jobs[task_id].task_json() == done


async def test_a_running_job_shows_a_preview(client: Client) -> None:
    fake = client[0]
    task_id = str((await submit(client, prompt="STUCKJOB"))["result"])
    await eventually(lambda: fake.jobs[task_id].status == "IN_PROGRESS")
    running = await fetch(client, task_id)
    assert running["imageUrl"].startswith(f"{fake.url}/mj/image/{task_id}?rand=")
    assert running["finishTime"] == (0 if fake.dialect == "relay" else None)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_waiting_job_looks_pending_per_dialect(dialect: Dialect) -> None:
    # The relay is looked at before its first upstream poll (after it, it shows NOT_START).
    async with proxy(dialect, concurrency=1, upstream_poll_seconds=3600) as client:
        await submit(client, prompt="STUCKJOB")
        task = await fetch(client, (await submit(client))["result"])
    pending = {"reference": ("NOT_START", None), "extended": ("NOT_START", None), "relay": ("", 0)}[dialect]
    assert (task["status"], task["startTime"]) == pending
    assert task["progress"] == ("0%" if dialect == "relay" else None)


async def test_mode_prefix_only_where_the_dialect_has_one() -> None:
    async with proxy("extended") as client:
        _, answer = await post(client, "/mj-relax/mj/submit/imagine", {"prompt": "cat"})
        assert (await fetch(client, answer["result"]))["mode"] == "RELAX"
        assert (await post(client, "/fast/mj/submit/imagine", {"prompt": "cat"}))[0] == 404
        assert client[0].stats.requests["POST /mj/submit/imagine"] == 1
    async with proxy("relay") as client:
        assert (await post(client, "/fast/mj/submit/imagine", {"prompt": "cat"}))[0] == 200
    async with proxy("reference") as client:
        assert (await post(client, "/mj-fast/mj/submit/imagine", {"prompt": "cat"}))[0] == 404


async def test_unknown_id_per_dialect(client: Client) -> None:
    fake, session = client
    async with session.get(f"{fake.url}/mj/task/9999999999999999/fetch") as r:
        status, text = r.status, await r.text()
    if fake.dialect == "reference":
        assert (status, text) == (200, "")
    elif fake.dialect == "extended":
        assert (status, text) == (204, "")
    else:
        assert (status, text) == (400, '{"description":"task_no_found ","type":"upstream_error","code":4}')


async def test_list_by_condition_omits_unknown_ids_shuffles_and_counts(client: Client) -> None:
    ids = [str((await submit(client))["result"]) for _ in range(6)]
    orders = []
    for _ in range(3):
        _, tasks = await post(client, "/mj/task/list-by-condition", {"ids": [*ids, "1"]})
        orders.append([t["id"] for t in tasks])
    assert all(sorted(order) == sorted(ids) for order in orders)
    assert any(order != ids for order in orders)
    stats = client[0].stats
    assert stats.list_batches == [7, 7, 7] and stats.requests["POST /mj/task/list-by-condition"] == 3


async def test_list_by_condition_can_be_switched_off() -> None:
    async with proxy(list_by_condition=False) as client:
        assert (await post(client, "/mj/task/list-by-condition", {"ids": ["1"]}))[0] == 404
        assert client[0].stats.requests["POST /mj/task/list-by-condition"] == 1


async def test_task_list_and_queue_per_dialect(client: Client) -> None:
    fake, session = client
    stuck = str((await submit(client, prompt="STUCKJOB"))["result"])
    done = str((await submit(client))["result"])
    await wait_done(client, done)
    answers = []
    for path in ("/mj/task/list", "/mj/task/queue"):
        async with session.get(f"{fake.url}{path}") as r:
            answers.append([t["id"] for t in await r.json()] if r.status == 200 else r.status)
    assert (
        answers
        == {
            "reference": [[done, stuck], [stuck]],
            "extended": [[done, stuck], 404],
            "relay": [404, 404],
        }[fake.dialect]
    )
    assert fake.jobs[stuck].task_json()["progress"] == "93%"


# --- submit answers ---


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_queue_limit_answers_22_then_queue_full(dialect: Dialect) -> None:
    async with proxy(dialect, concurrency=1, queue_size=1) as client:
        running, queued, refused = [await submit(client) for _ in range(3)]
        assert running["code"] == 1
        assert queued["code"] == (1 if dialect == "relay" else 22)
        assert queued["properties"]["numberOfQueues"] == 1
        assert queued["description"] == "排队中，前面还有1个任务"
        full = (
            (9, "提交失败，队列已满，请稍后重试") if dialect == "extended" else (23, "队列已满，请稍后尝试")
        )
        if dialect == "relay":  # every relay refusal is a 400 upstream_error with code 4
            assert refused == {"description": f"{full[1]} ", "type": "upstream_error", "code": 4}
        else:
            assert (refused["code"], refused["description"], refused["result"]) == (*full, None)
        assert client[0].stats.accepted_submits == 2
        assert (await wait_done(client, queued["result"]))[-1]["status"] == "SUCCESS"
        assert client[0].jobs[str(running["result"])].status == "SUCCESS"


async def test_banned_and_invalid_prompts(client: Client) -> None:
    fake = client[0]
    banned = {
        "code": 24,
        "description": "可能包含敏感词",
        "result": None,
        "properties": {"promptEn": "a NUDE statue", "bannedWord": "nude"},
    }
    if fake.dialect == "relay":
        banned = {"description": "可能包含敏感词 ", "type": "upstream_error", "code": 4}
    assert await submit(client, prompt="a NUDE statue") == banned
    cases: list[tuple[dict[str, Any], str]] = [
        ({"prompt": "  "}, "prompt_is_required" if fake.dialect == "relay" else "prompt不能为空"),
        ({"prompt": "cat", "base64Array": ["not-a-data-url"]}, "base64格式错误"),
        ({"prompt": "cat", "base64Array": ["data:image/png;base64,@@"]}, "base64格式错误"),
    ]
    for body, text in cases:
        status, answer = await post(client, "/mj/submit/imagine", body)
        if fake.dialect == "relay":
            assert (status, answer) == (400, {"description": f"{text} ", "type": "upstream_error", "code": 4})
        else:
            assert (status, answer["code"], answer["description"]) == (200, 4, text)
    assert (await submit(client, base64Array=[DATA_URL]))["code"] == 1
    assert fake.stats.accepted_submits == 1


async def test_fail_words_end_in_failure(client: Client) -> None:
    failed = (await wait_done(client, (await submit(client, prompt="cat FAILJOB"))["result"]))[-1]
    reason = {"reference": "任务超时", "extended": "执行超时 5 分钟", "relay": "上游任务超时（超过1小时）"}
    relay = client[0].dialect == "relay"
    assert (failed["status"], failed["progress"]) == ("FAILURE", "100%" if relay else "")
    assert failed["failReason"] == reason[client[0].dialect] and not failed["imageUrl"]


async def test_server_timeout_fails_stuck_jobs() -> None:
    async with proxy(server_timeout=0.1) as client:
        seen = await wait_done(client, (await submit(client, prompt="STUCKJOB"))["result"])
    assert [t["progress"] for t in seen[-2:]] == ["93%", ""]
    assert seen[-1]["failReason"] == "任务超时"


async def test_actions_make_child_tasks_and_modal_resumes() -> None:
    async with proxy("extended") as client:
        parent = (await wait_done(client, (await submit(client))["result"]))[-1]
        action = {"taskId": parent["id"], "customId": parent["buttons"][1]["customId"]}
        upscale_id = (await post(client, "/mj/submit/action", action))[1]["result"]
        upscaled = (await wait_done(client, upscale_id))[-1]
        assert (upscaled["action"], upscaled["parentId"]) == ("UPSCALE", parent["id"])
        assert upscaled["description"] == f"/up {parent['id']} U2"

        region = next(b for b in upscaled["buttons"] if b["customId"].startswith("MJ::Inpaint::"))
        _, answer = await post(client, "/mj/submit/action", {"taskId": upscale_id, **region})
        assert answer["code"] == 21 and (await fetch(client, answer["result"]))["status"] == "MODAL"
        modal = {"taskId": answer["result"], "prompt": "a red hat", "maskBase64": DATA_URL}
        assert (await post(client, "/mj/submit/modal", modal))[1]["result"] == answer["result"]
        assert (await wait_done(client, answer["result"]))[-1]["prompt"] == "a red hat"

        status, answer = await post(client, "/mj/submit/action", {"taskId": "1", "customId": "x"})
        assert (status, answer["code"]) == (404, 3)


async def test_reference_change_blend_and_describe() -> None:
    async with proxy() as client:
        parent_id = (await submit(client))["result"]
        early = await post(client, "/mj/submit/simple-change", {"content": f"{parent_id} V3"})
        assert early[1]["description"] == "关联任务状态错误"
        await wait_done(client, parent_id)
        requests = [
            ("simple-change", {"content": f"{parent_id} V3"}, "VARIATION"),
            ("change", {"taskId": parent_id, "action": "UPSCALE", "index": 1}, "UPSCALE"),
            ("blend", {"base64Array": [DATA_URL, DATA_URL]}, "BLEND"),
            ("describe", {"base64": DATA_URL}, "DESCRIBE"),
        ]
        for path, body, action in requests:
            _, answer = await post(client, f"/mj/submit/{path}", body)
            assert answer["code"] == 1, answer
            assert (await wait_done(client, answer["result"]))[-1]["action"] == action
        assert (await post(client, "/mj/submit/action", {}))[0] == 404


# --- faults ---


async def test_reset_after_record_records_the_job_but_drops_the_answer() -> None:
    async with proxy() as client:
        client[0].faults.add("reset_after_record", "submit", times=1)
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await submit(client, state="tag-x")
        assert client[0].stats.accepted_submits == 1 and client[0].stats.submits_by_state == {"tag-x": 1}
        assert (await submit(client))["code"] == 1


async def test_reset_before_record_records_nothing() -> None:
    async with proxy() as client:
        fake = client[0]
        fault = fake.faults.add("reset_before_record", "submit", times=1)
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await submit(client)
        assert fake.stats.accepted_submits == 0 and not fake.jobs and fault.fired == 1
        assert fake.stats.requests["POST /mj/submit/imagine"] == 1


async def test_http_500_fires_for_the_next_n_requests() -> None:
    async with proxy() as client:
        fake, session = client
        fault = fake.faults.add("http_500", "submit", times=2)
        answers = []
        for _ in range(3):
            async with session.post(f"{fake.url}/mj/submit/imagine", json={"prompt": "cat"}) as r:
                answers.append((r.status, r.content_type))
        assert answers == [(500, "text/html"), (500, "text/html"), (200, "application/json")]
        assert fault.fired == 2 and fake.faults.active == []
        assert fake.stats.accepted_submits == 1 and fake.stats.requests["POST /mj/submit/imagine"] == 3


@pytest.mark.parametrize(
    ("kind", "dialect", "status", "expected"),
    [
        ("http_429", "reference", 429, b""),
        ("http_429", "relay", 429, b'{"error":{"message":"'),
        ("http_502", "extended", 502, b"<html>"),
        ("http_503", "reference", 503, b""),
        ("malformed_json", "reference", 200, b'{"code":1,"descr'),
        ("html", "extended", 200, b"<html>"),
        ("empty", "relay", 200, b""),
    ],
)
async def test_fault_bodies(kind: Any, dialect: Dialect, status: int, expected: bytes) -> None:
    """Each kind's status and body; `expected` is a body prefix, or b"" for an empty body."""
    async with proxy(dialect) as (fake, session):
        fake.faults.add(kind, "submit")
        async with session.post(f"{fake.url}/mj/submit/imagine", json={"prompt": "cat"}) as r:
            body = await r.read()
        assert r.status == status
        assert body.startswith(expected) if expected else body == b""
        assert fake.stats.accepted_submits == (1 if kind == "malformed_json" else 0)


async def test_slow_fault_answers_late_after_recording() -> None:
    async with proxy() as client:
        client[0].faults.add("slow", "submit", times=1, delay=SETTLE_TIMEOUT)
        answer = asyncio.ensure_future(submit(client))
        await eventually(lambda: client[0].stats.accepted_submits == 1)
        assert not answer.done(), "the job is recorded while its answer is still held back"
        answer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await answer


async def test_refuse_connections_then_reopen_on_the_same_port() -> None:
    async with proxy() as client:
        fake = client[0]
        url = fake.url
        assert (await submit(client))["code"] == 1  # leaves a keep-alive connection in the pool
        await fake.refuse_connections(2.0)  # a margin no busy machine eats before the next submit
        with pytest.raises(aiohttp.ClientConnectorError):  # refused: provably not delivered
            await submit(client)
        await eventually(lambda: fake.url == url)
        for _ in range(600):  # the port opens again in the background: wait for it, not a guess
            with contextlib.suppress(aiohttp.ClientConnectorError):
                assert (await submit(client))["code"] == 1
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the port never opened again")
        assert fake.stats.accepted_submits == 2


# --- callbacks ---


class Receiver:
    """A tiny hook receiver collecting callback bodies."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = status
        app = web.Application()
        app.router.add_post("/hook/{token}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(status=self.status)

    async def __aenter__(self) -> Receiver:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/hook/secret"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


async def run_with_hook(
    dialect: Dialect = "reference", status: int = 200, expect: int = 8, **knobs: Any
) -> tuple[FakeProxy, Receiver]:
    """Run one job with a notifyHook until `expect` callbacks were handled (sent, failed or dropped)."""
    async with Receiver(status) as receiver, proxy(dialect, seed=3) as client:
        fake = client[0]
        for name, value in knobs.items():
            setattr(fake.faults, name, value)
        await wait_done(client, (await submit(client, notifyHook=receiver.url))["result"])
        stats = fake.stats
        await eventually(
            lambda: stats.callbacks_sent + stats.callbacks_failed + stats.callbacks_dropped >= expect
        )
    return fake, receiver


async def test_callbacks_follow_every_step_in_order() -> None:
    fake, receiver = await run_with_hook()
    assert [b["progress"] for b in receiver.bodies] == STEPS
    assert [b["status"] for b in receiver.bodies] == ["SUBMITTED"] + ["IN_PROGRESS"] * 6 + ["SUCCESS"]
    assert all(b["properties"]["notifyHook"] == receiver.url for b in receiver.bodies)
    assert fake.stats.callbacks_sent == 8


async def test_callback_knobs_drop_duplicate_reorder_and_failures() -> None:
    fake, receiver = await run_with_hook(callback_drop_rate=1.0)
    assert receiver.bodies == [] and fake.stats.callbacks_dropped == 8

    fake, receiver = await run_with_hook(expect=16, callback_duplicate_rate=1.0)
    assert [b["progress"] for b in receiver.bodies] == [p for p in STEPS for _ in range(2)]

    fake, receiver = await run_with_hook(callback_reorder=True, callback_delay=0.05)
    assert sorted(b["progress"] for b in receiver.bodies) == sorted(STEPS)

    fake, receiver = await run_with_hook(status=502)
    assert len(receiver.bodies) == 8 and fake.stats.callbacks_failed == 8

    fake, receiver = await run_with_hook("relay", expect=0)
    assert receiver.bodies == [] and fake.stats.callbacks_sent == 0
    assert "notifyHook" not in next(iter(fake.jobs.values())).task_json()["properties"]


async def test_close_cancels_callbacks_to_a_hanging_receiver() -> None:
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        async with proxy() as client:
            await wait_done(client, (await submit(client, notifyHook=hook))["result"])
            started = time.monotonic()
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        await runner.cleanup()


# --- reproducibility and the standalone server ---


async def test_seed_makes_ids_hashes_and_fault_draws_reproducible() -> None:
    async def run(seed: int) -> tuple[list[str], list[str], list[int]]:
        async with proxy(seed=seed) as (fake, session):
            fake.faults.add("http_503", "submit", rate=0.5)
            statuses = []
            for _ in range(12):
                async with session.post(f"{fake.url}/mj/submit/imagine", json={"prompt": "cat"}) as r:
                    statuses.append(r.status)
            jobs = list(fake.jobs.values())
            return [j.id[-3:] for j in jobs], [j.hash for j in jobs], statuses

    first, again, other = await run(11), await run(11), await run(12)
    assert first == again and first != other
    assert set(first[2]) == {200, 503}


async def test_serve_prints_url_key_and_auth(capsys: pytest.CaptureFixture[str]) -> None:
    server = asyncio.ensure_future(serve(0, dialect="extended", job_seconds=0.05))
    printed: list[str] = []

    def has_printed() -> bool:
        printed.append(capsys.readouterr().out)
        return "auth=" in "".join(printed)

    await eventually(has_printed)
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server
    line = "".join(printed)
    assert "http://127.0.0.1:" in line and "api_key=sk-fake-key" in line and "auth=authorization" in line


async def test_scripted_schedule_fires_on_the_chosen_requests() -> None:
    async with FakeProxy("reference", job_seconds=0.05) as fake, aiohttp.ClientSession() as session:
        fake.faults.add("http_503", endpoint="submit", after=1, times=2)
        statuses = []
        for _ in range(4):
            async with session.post(
                fake.url + "/mj/submit/imagine", json={"prompt": "cat"}, headers={"mj-api-secret": "sk-fake-key"}
            ) as response:
                statuses.append(response.status)
    assert statuses == [200, 503, 503, 200]
