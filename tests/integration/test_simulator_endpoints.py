"""FakeProxy's follow-up and auxiliary endpoints seen from a raw aiohttp client, per dialect."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.conftest import eventually
from tests.integration.test_simulator import (
    DATA_URL,
    DIALECTS,
    PNG,
    Client,
    Dialect,
    fetch,
    post,
    proxy,
    submit,
    wait_done,
)


async def get(client: Client, path: str) -> tuple[int, Any]:
    fake, session = client
    async with session.get(f"{fake.url}{path}") as r:
        return r.status, (await r.json() if r.content_type == "application/json" else await r.text())


async def done_job(client: Client, prompt: str = "cat") -> dict[str, Any]:
    return (await wait_done(client, (await submit(client, prompt=prompt))["result"]))[-1]


async def upscaled_job(client: Client) -> dict[str, Any]:
    parent = await done_job(client)
    _, answer = await post(client, "/mj/submit/action", {"taskId": parent["id"], "customId": parent["buttons"][0]["customId"]})
    return (await wait_done(client, answer["result"]))[-1]


SERVED = {
    "reference": set(),
    "extended": {"shorten", "upload", "seed", "cancel", "swap", "edits", "retexture", "video"},
    "relay": {"shorten", "upload", "seed", "swap"},
}


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_which_endpoints_each_dialect_serves(dialect: Dialect) -> None:
    async with proxy(dialect) as client:
        task_id = (await done_job(client))["id"]
        answers = {
            "shorten": await post(client, "/mj/submit/shorten", {"prompt": "a b c d e"}),
            "upload": await post(client, "/mj/submit/upload-discord-images", {"base64Array": [DATA_URL]}),
            "seed": await get(client, f"/mj/task/{task_id}/image-seed"),
            "cancel": await post(client, f"/mj/task/{task_id}/cancel", None),
            "swap": await post(client, "/mj/insight-face/swap", {"sourceBase64": DATA_URL, "targetUrl": "https://x/t.png"}),
            "edits": await post(client, "/mj/submit/edits", {"prompt": "night", "image": DATA_URL}),
            "retexture": await post(client, "/mj/submit/retexture", {"prompt": "glass", "image": "https://x/a.png"}),
            "video": await post(client, "/mj/submit/video", {"prompt": "runs", "image": DATA_URL}),
        }
    assert {name for name, (status, _) in answers.items() if status != 404} == SERVED[dialect]
    if dialect == "reference":
        return
    shorten, upload, seed = answers["shorten"][1], answers["upload"][1], answers["seed"][1]
    assert shorten["code"] in (1, 22) and isinstance(shorten["result"], str)
    assert upload["code"] == 1 and upload["result"][0].startswith("http://127.0.0.1:")
    assert seed == {"code": 1, "description": "成功", "result": client[0].jobs[task_id].seed, "properties": {}}


async def test_shorten_gives_an_analysis_and_no_buttons() -> None:
    async with proxy("extended") as client:
        _, answer = await post(client, "/mj/submit/shorten", {"prompt": "a lighthouse at dusk, oil painting"})
        done = (await wait_done(client, answer["result"]))[-1]
    assert done["action"] == "SHORTEN" and done["buttons"] == []
    assert "**SHORTENED PROMPTS**" in done["properties"]["finalPrompt"]


async def test_uploads_are_served_without_a_key() -> None:
    async with proxy("relay") as client:
        _, answer = await post(client, "/mj/submit/upload-discord-images", {"base64Array": [DATA_URL, DATA_URL]})
        assert len(answer["result"]) == 2 and client[0].stats.accepted_submits == 0
        async with aiohttp.ClientSession() as anonymous, anonymous.get(answer["result"][0]) as r:
            assert (r.status, await r.read()) == (200, PNG)
        for bad in ([], ["nope"], None):
            status, error = await post(client, "/mj/submit/upload-discord-images", {"base64Array": bad})
            assert (status, error["description"]) == (400, "base64格式错误 ")


@pytest.mark.parametrize("dialect", ["extended", "relay"])
async def test_image_seed_needs_a_finished_known_task(dialect: Dialect) -> None:
    async with proxy(dialect) as client:
        running = (await submit(client, prompt="STUCKJOB"))["result"]
        status, body = await get(client, f"/mj/task/{running}/image-seed")
        unknown = await get(client, "/mj/task/1/image-seed")
    if dialect == "extended":
        assert (status, body["code"], body["description"]) == (400, 4, "关联任务状态错误")
        assert (unknown[0], unknown[1]["code"], unknown[1]["description"]) == (404, 3, "关联任务不存在或已失效")
    else:
        assert (status, body) == (400, {"description": "未找到 seed ", "type": "upstream_error", "code": 4})
        assert unknown == (400, {"description": "task_not_found ", "type": "upstream_error", "code": 4})


async def test_extended_cancel_fails_running_and_waiting_jobs() -> None:
    async with proxy("extended", concurrency=1) as client:
        fake = client[0]
        running = (await submit(client, prompt="STUCKJOB"))["result"]
        waiting = (await submit(client, prompt="cat"))["result"]
        after = (await submit(client, prompt="dog"))["result"]
        for task_id in (waiting, running):
            assert await post(client, f"/mj/task/{task_id}/cancel", None) == (200, "")
        for task_id in (running, waiting):
            task = await fetch(client, task_id)
            assert (task["status"], task["failReason"], task["progress"]) == ("FAILURE", "取消任务", "")
        assert (await wait_done(client, after))[-1]["status"] == "SUCCESS", "the freed slot runs the next job"
        assert await post(client, f"/mj/task/{running}/cancel", None) == (200, ""), "idempotent"
        assert (await post(client, "/mj/task/1/cancel", None))[0] == 404
        assert fake.jobs[running].status == "FAILURE"


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d != "reference"])  # no buttons there
async def test_the_upscaled_button_set(dialect: Dialect) -> None:
    async with proxy(dialect) as client:
        upscaled = await upscaled_job(client)
    labels = [b["label"] or b["emoji"] for b in upscaled["buttons"]]
    assert labels == [
        "Upscale (Subtle)", "Upscale (Creative)", "Vary (Subtle)", "Vary (Strong)", "Vary (Region)",
        "Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom", "⬅️", "➡️", "⬆️", "⬇️",
    ]


@pytest.mark.parametrize(
    ("prefix", "action"),
    [("MJ::JOB::pan_right", "PAN"), ("MJ::Outpaint::75", "ZOOM"), ("MJ::JOB::upsample_v6_2x_subtle", "UPSCALE_HD")],
)
async def test_upscaled_buttons_make_children(prefix: str, action: str) -> None:
    async with proxy("extended") as client:
        upscaled = await upscaled_job(client)
        (button,) = [b for b in upscaled["buttons"] if b["customId"].startswith(prefix)]
        _, answer = await post(client, "/mj/submit/action", {"taskId": upscaled["id"], "customId": button["customId"]})
        child = (await wait_done(client, answer["result"]))[-1]
    assert (child["action"], child["parentId"], child["properties"]["custom_id"]) == (
        action, upscaled["id"], button["customId"]
    )


@pytest.mark.parametrize("dialect", ["extended", "relay"])
async def test_modal_buttons_and_remix(dialect: Dialect) -> None:
    async with proxy(dialect, remix=True) as client:
        upscaled = await upscaled_job(client)
        custom = {b["label"]: b["customId"] for b in upscaled["buttons"]}
        codes = {}
        for label in ("Vary (Region)", "Custom Zoom", "Vary (Strong)"):
            _, answer = await post(client, "/mj/submit/action", {"taskId": upscaled["id"], "customId": custom[label]})
            task = await fetch(client, answer["result"])
            codes[label] = (answer["code"], task["status"], task["action"])
    if dialect == "relay":  # 21 survives only for Vary Region and Custom Zoom; relays name every action
        assert codes == {
            "Vary (Region)": (21, "MODAL", "INPAINT"),
            "Custom Zoom": (21, "MODAL", "CUSTOM_ZOOM"),
            "Vary (Strong)": (1, "MODAL", "HIGH_VARIATION"),
        }
    else:
        assert codes == {
            "Vary (Region)": (21, "MODAL", "VARIATION"),
            "Custom Zoom": (21, "MODAL", "ZOOM"),
            "Vary (Strong)": (21, "MODAL", "VARIATION"),
        }


async def test_save_lag_refuses_actions_on_a_fresh_parent() -> None:
    lag = 2.0
    async with proxy("extended", save_lag=lag) as client:
        parent = await done_job(client)
        body = {"taskId": parent["id"], "customId": parent["buttons"][0]["customId"]}
        assert (await post(client, "/mj/submit/action", body))[1]["description"] == "关联任务状态错误"
        await eventually(lambda: not client[0].jobs[parent["id"]].finished_within(lag))
        assert (await post(client, "/mj/submit/action", body))[1]["code"] == 1


async def test_relay_request_quirks() -> None:
    async with proxy("relay") as client:
        parent = await done_job(client)
        cases = [
            ("/mj/submit/change", {"taskId": parent["id"], "action": "REROLL"}, "index_is_required"),
            ("/mj/submit/action", {"taskId": parent["id"]}, "custom_id_is_required"),
            ("/mj/submit/action", {"taskId": parent["id"], "customId": "MJ::Nope::1"}, "unknown_action:MJ::Nope::1"),
            ("/mj/submit/action", {"taskId": "1", "customId": "MJ::JOB::upsample::1::x"}, "task_not_found"),
        ]
        for path, body, text in cases:
            assert await post(client, path, body) == (400, {"description": f"{text} ", "type": "upstream_error", "code": 4})
        reroll = {"taskId": parent["id"], "action": "REROLL", "index": 1}
        assert (await post(client, "/mj/submit/change", reroll))[1]["code"] == 1


async def test_video_jobs_and_their_extension() -> None:
    async with proxy("extended") as client:
        _, answer = await post(client, "/mj/submit/video", {"prompt": "runs", "image": DATA_URL, "motion": "high"})
        clip = (await wait_done(client, answer["result"]))[-1]
        assert clip["action"] == "VIDEO" and clip["videoUrl"].endswith(".mp4") and clip["buttons"] == []
        extend = {"action": "extend", "taskId": clip["id"], "index": 2, "prompt": "and jumps"}
        _, answer = await post(client, "/mj/submit/video", extend)
        longer = (await wait_done(client, answer["result"]))[-1]
        assert (longer["action"], longer["parentId"]) == ("VIDEO_EXTEND", clip["id"])
        refused = [
            {"prompt": "runs", "image": "nope"},
            {"prompt": "runs", "image": DATA_URL, "motion": "wild"},
            {**extend, "index": 4},
            {**extend, "taskId": (await done_job(client))["id"]},
            {"image": DATA_URL},
        ]
        for body in refused:
            assert (await post(client, "/mj/submit/video", body))[1]["code"] == 4


async def test_extended_describe_takes_a_link() -> None:
    async with proxy("extended") as client:
        assert (await post(client, "/mj/submit/describe", {"link": "https://example.com/a.png"}))[1]["code"] == 1
    async with proxy("reference") as client:
        assert (await post(client, "/mj/submit/describe", {"link": "https://example.com/a.png"}))[1]["code"] == 4
