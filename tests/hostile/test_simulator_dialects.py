"""FakeProxy answers as the real servers' own code does (protocol.md section 14, /work/shared/payloads).

Raw aiohttp requests, so the wire shape itself is checked, not what the SDK makes of it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import mjasync
from mjasync.testing import FakeProxy
from tests.conftest import SETTLE_TIMEOUT

PAYLOADS = Path(__file__).parent / "payloads"
LONG = 3600.0
"""An upstream poll that never comes within a test."""


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def headers(fake: FakeProxy, key: str | None = None) -> dict[str, str]:
    secret = fake.api_key if key is None else key
    assert secret is not None
    if fake.auth == "bearer":
        return {"Authorization": f"Bearer {secret}"}
    if fake.auth == "authorization":
        return {"Authorization": secret}
    return {"mj-api-secret": secret}


class Wire:
    """Raw requests to one FakeProxy: (status, text)."""

    def __init__(self, fake: FakeProxy, session: aiohttp.ClientSession) -> None:
        self.fake, self.session = fake, session

    async def send(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
        hdrs: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        sent = {"Content-Type": "application/json", **(headers(self.fake) if hdrs is None else hdrs)}
        async with self.session.request(method, self.fake.url + path, data=data, headers=sent) as r:
            return r.status, await r.text()

    async def json(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, text = await self.send(method, path, body, **kw)
        return status, json.loads(text)

    async def imagine(self, prompt: str = "a red fox", state: str = "s1") -> str:
        status, answer = await self.json("POST", "/mj/submit/imagine", {"prompt": prompt, "state": state})
        assert status == 200 and answer["code"] in (1, 22), answer
        return str(answer["result"])

    async def task(self, task_id: str) -> dict[str, Any]:
        status, task = await self.json("GET", f"/mj/task/{task_id}/fetch")
        assert status == 200, task
        assert isinstance(task, dict)
        return task

    async def until(self, task_id: str, status: str) -> dict[str, Any]:
        """Fetch until the task shows `status` (within SETTLE_TIMEOUT)."""
        deadline = asyncio.get_running_loop().time() + SETTLE_TIMEOUT
        task = await self.task(task_id)
        while task["status"] != status:
            assert asyncio.get_running_loop().time() < deadline, f"never {status}: {task}"
            await asyncio.sleep(0.01)
            task = await self.task(task_id)
        return task


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


# --- relay ---


async def test_relay_result_is_a_string(session: aiohttp.ClientSession) -> None:
    async with FakeProxy("relay", upstream_poll_seconds=LONG) as fake:
        status, answer = await Wire(fake, session).json("POST", "/mj/submit/imagine", {"prompt": "a red fox"})
    assert status == 200
    assert isinstance(answer["result"], str) and answer["result"].isdigit()


async def test_relay_task_before_its_first_upstream_poll(session: aiohttp.ClientSession) -> None:
    async with FakeProxy("relay", upstream_poll_seconds=LONG) as fake:
        wire = Wire(fake, session)
        task = await wire.task(await wire.imagine(state="mine"))
    real = payload("relay-go/relay-task-before-first-poll.json")
    assert set(task) == set(real)
    for key in ("status", "progress", "buttons", "properties", "state", "videoUrl", "videoUrls",
                "description", "startTime", "finishTime", "imageUrl", "failReason"):
        assert task[key] == real[key], key


async def test_relay_state_appears_after_the_first_poll_and_failure_is_100(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeProxy("relay", job_seconds=0.1, upstream_poll_seconds=0.01) as fake:
        wire = Wire(fake, session)
        done = await wire.until(await wire.imagine(state="mine"), "SUCCESS")
        failed = await wire.until(await wire.imagine("FAILJOB", state="f"), "FAILURE")
    assert done["state"] == "mine"
    assert set(done) == set(payload("relay-go/relay-task-after-poll-SUCCESS.json"))
    assert "mode" not in done and "cost" not in done
    assert done["videoUrl"] == "" and done["videoUrls"] is None
    assert failed["progress"] == payload("relay-go/relay-task-after-poll-FAILURE.json")["progress"] == "100%"


async def test_relay_action_names(session: aiohttp.ClientSession) -> None:
    async with FakeProxy("relay", job_seconds=0.05, upstream_poll_seconds=0.005) as fake:
        wire = Wire(fake, session)
        grid = await wire.until(await wire.imagine(), "SUCCESS")

        async def press(parent: dict[str, Any], prefix: str) -> str:
            custom_id = next(b["customId"] for b in parent["buttons"] if b["customId"].startswith(prefix))
            status, answer = await wire.json(
                "POST", "/mj/submit/action", {"taskId": parent["id"], "customId": custom_id}
            )
            assert status == 200, answer
            return str(answer["result"])

        reroll = await wire.task(await press(grid, "MJ::JOB::reroll::"))
        upscaled = await wire.until(await press(grid, "MJ::JOB::upsample::1::"), "SUCCESS")
        hd = await wire.task(await press(upscaled, "MJ::JOB::upsample_v6_2x_subtle::"))
        low = await wire.task(await press(upscaled, "MJ::JOB::low_variation::"))
        high = await wire.task(await press(upscaled, "MJ::JOB::high_variation::"))
    assert reroll["action"] == "REROLL"
    assert upscaled["action"] == "UPSCALE"
    assert hd["action"] == "UPSCALE"
    assert low["action"] == "LOW_VARIATION"
    assert high["action"] == "HIGH_VARIATION"


async def test_relay_errors_are_400_code_4_upstream_errors(session: aiohttp.ClientSession) -> None:
    async with FakeProxy("relay", concurrency=1, queue_size=0, stuck_words=("STUCK",)) as fake:
        wire = Wire(fake, session)
        empty = await wire.json("POST", "/mj/submit/imagine", {"prompt": " "})
        bad = await wire.json("POST", "/mj/submit/imagine", raw=b"[1,")
        banned = await wire.json("POST", "/mj/submit/imagine", {"prompt": "a nude statue"})
        await wire.imagine("STUCK")
        full = await wire.json("POST", "/mj/submit/imagine", {"prompt": "one more"})
    assert empty == (400, payload("relay-go/relay-error-empty-prompt.json"))
    assert bad == (400, payload("relay-go/relay-error-submit-bad-body.json"))
    for status, body in (banned, full):
        assert status == 400
        assert set(body) == {"description", "type", "code"}
        assert body["code"] == 4 and body["type"] == "upstream_error"
    assert "敏感词" in banned[1]["description"]
    assert "队列已满" in full[1]["description"]


async def test_relay_unknown_id_and_bad_list_body(session: aiohttp.ClientSession) -> None:
    async with FakeProxy("relay") as fake:
        wire = Wire(fake, session)
        unknown = await wire.json("GET", "/mj/task/1700000000000000/fetch")
        listed = await wire.json("POST", "/mj/task/list-by-condition", raw=b"{not json")
    assert unknown == (400, payload("relay-go/relay-error-fetch-unknown.json"))
    assert unknown[1]["description"] == "task_no_found "
    assert listed == (400, payload("relay-go/relay-error-list-bad-body.json"))


async def test_relay_accepts_a_lowercase_bearer(session: aiohttp.ClientSession) -> None:
    async with FakeProxy("relay") as fake:
        status, answer = await Wire(fake, session).json(
            "POST", "/mj/submit/imagine", {"prompt": "a cat"},
            hdrs={"Authorization": f"bearer {fake.api_key}"},
        )
    assert status == 200 and answer["code"] == 1


# --- extended ---


async def test_extended_unknown_fetch_is_an_empty_204(session: aiohttp.ClientSession) -> None:
    async with FakeProxy("extended") as fake:
        status, text = await Wire(fake, session).send("GET", "/mj/task/1700000000000000/fetch")
    assert (status, text) == (204, "")


async def test_extended_new_task_is_not_start_and_accepted_text(session: aiohttp.ClientSession) -> None:
    async with FakeProxy("extended", concurrency=1, stuck_words=("STUCK",)) as fake:
        wire = Wire(fake, session)
        status, first = await wire.json("POST", "/mj/submit/imagine", {"prompt": "STUCK"})
        waiting = await wire.task(await wire.imagine("second"))
    assert status == 200 and first["code"] == 1 and first["description"] == "提交成功"
    assert waiting["status"] == "NOT_START"


async def test_extended_image_seed_of_unknown_and_unfinished(session: aiohttp.ClientSession) -> None:
    async with FakeProxy("extended", concurrency=1, stuck_words=("STUCK",)) as fake:
        wire = Wire(fake, session)
        unknown = await wire.json("GET", "/mj/task/1700000000000000/image-seed")
        await wire.imagine("STUCK")
        waiting = await wire.json("GET", f"/mj/task/{await wire.imagine('second')}/image-seed")
    assert unknown[0] == 404
    assert unknown[1]["code"] == 3 and unknown[1]["description"] == "关联任务不存在或已失效"
    assert waiting[0] == 400 and waiting[1]["code"] == 4


async def test_extended_wrong_key_on_a_missing_route_is_401(session: aiohttp.ClientSession) -> None:
    async with FakeProxy("extended") as fake:
        wire = Wire(fake, session)
        wrong = await wire.send("GET", "/mj/task/queue", hdrs={"Authorization": "wrong"})
        right = await wire.send("GET", "/mj/task/queue")
    assert wrong[0] == 401
    assert right[0] == 404


async def test_extended_malformed_json(session: aiohttp.ClientSession) -> None:
    async with FakeProxy("extended") as fake:
        status, body = await Wire(fake, session).json("POST", "/mj/submit/imagine", raw=b'{"prompt":"cat"')
    assert body["success"] is False and body["code"] == -1, (status, body)


# --- reference ---


async def test_reference_malformed_json_is_springs_400(session: aiohttp.ClientSession) -> None:
    async with FakeProxy("reference") as fake:
        status, body = await Wire(fake, session).json("POST", "/mj/submit/imagine", raw=b'{"prompt":"cat"')
    assert status == 400
    assert {"timestamp", "status", "error", "path"} <= set(body) and "code" not in body
    assert body["status"] == 400 and body["path"] == "/mj/submit/imagine"


# --- the SDK on these answers ---


async def test_sdk_waits_through_the_relays_first_poll() -> None:
    async with FakeProxy("relay", job_seconds=0.1, upstream_poll_seconds=0.05) as fake:
        async with mjasync.Client(fake.url, fake.api_key, auth=fake.auth, poll_interval=0.005) as mj:
            task = await mj.imagine("a red fox", state="mine")
            first = await mj.fetch(task.id)
            info = await task.wait(timeout=30)
    assert first.status in (mjasync.TaskStatus.UNKNOWN, mjasync.TaskStatus.SUBMITTED,
                            mjasync.TaskStatus.IN_PROGRESS, mjasync.TaskStatus.SUCCESS)
    assert info.status is mjasync.TaskStatus.SUCCESS and info.state == "mine"
    assert info.buttons


async def test_sdk_on_the_extended_unknown_fetch() -> None:
    async with FakeProxy("extended") as fake:
        async with mjasync.Client(fake.url, fake.api_key, auth=fake.auth) as mj:
            with pytest.raises(mjasync.TaskNotFoundError):
                await mj.fetch("1700000000000000")


async def test_sdk_on_relay_rejections() -> None:
    async with FakeProxy("relay") as fake:
        async with mjasync.Client(fake.url, fake.api_key, auth=fake.auth) as mj:
            with pytest.raises(mjasync.BannedPromptError):
                await mj.imagine("a nude statue")
            with pytest.raises(mjasync.TaskNotFoundError):
                await mj.fetch("1700000000000000")
    assert fake.stats.accepted_submits == 0
