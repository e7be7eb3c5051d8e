"""Every endpoint method against FakeProxy in each dialect; requests checked in the fake's log."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import mjasync
from mjasync.testing import FakeProxy
from tests.integration.conftest import client_for

PNG = "data:image/png;base64,iVBORw0KGgo="
MASK = base64.b64encode(b"\x89PNG\r\n\x1a\nmask").decode()


def bodies(fake: FakeProxy, route: str) -> list[dict[str, Any]]:
    """JSON bodies the fake received on `route`, with the SDK's state tag checked and removed."""
    found = []
    for request in fake.requests:
        if request.route == route:
            body = dict(request.json or {})
            state = body.pop("state", None)
            assert state is None or "mja-" in state
            found.append(body)
    return found


async def finished(mj: mjasync.Client, prompt: str = "a red fox") -> mjasync.Task:
    task = await mj.imagine(prompt)
    await task.wait(timeout=10)
    return task


async def upscaled(fake: FakeProxy, mj: mjasync.Client) -> mjasync.Task:
    child = await (await finished(mj)).upscale(1)
    await child.wait(timeout=10)
    return child


# The reference server shows no buttons (test_reference_refuses_buttons_it_does_not_show).
WITH_BUTTONS = pytest.mark.parametrize("fake", ["extended", "relay"], indirect=True)


# --- U / V / reroll: action where the server has it, change on the reference server ---

# What the relay names a child task (CoverPlusActionToNormalAction, protocol.md section 14).
RELAY_ACTIONS = {"IMAGINE": "REROLL", "UPSCALE_HD": "UPSCALE"}


@pytest.mark.parametrize(
    ("press", "kind", "index", "change", "action"),
    [
        (lambda t: t.upscale(2), "upsample::2", 2, ("UPSCALE", 2), "UPSCALE"),
        (lambda t: t.vary(3), "variation::3", 3, ("VARIATION", 3), "VARIATION"),
        (lambda t: t.reroll(), "reroll::0", 0, ("REROLL", 1), "IMAGINE"),
    ],
)
async def test_grid_helpers_round_trip(
    fake: FakeProxy,
    mj: mjasync.Client,
    press: Callable[[mjasync.Task], Awaitable[mjasync.Task]],
    kind: str,
    index: int,
    change: tuple[str, int],
    action: str,
) -> None:
    parent = await finished(mj)
    child = await press(parent)
    info = await child.wait(timeout=10)
    if fake.dialect == "relay":
        action = RELAY_ACTIONS.get(action, action)
    assert info.action.value == action and fake.jobs[child.id].parent_id == parent.id
    job_hash = fake.jobs[parent.id].hash
    if fake.dialect == "reference":
        assert bodies(fake, "POST /mj/submit/change") == [
            {"taskId": parent.id, "action": change[0], "index": change[1]}
        ]
        assert fake.stats.requests["POST /mj/submit/action"] == 0
    else:
        (body,) = bodies(fake, "POST /mj/submit/action")
        assert body["taskId"] == parent.id and body["customId"].startswith(f"MJ::JOB::{kind}::{job_hash}")
        assert mjasync.parse_custom_id(body["customId"]).index == index
        assert fake.stats.requests["POST /mj/submit/change"] == 0


async def test_action_by_custom_id_works_everywhere(fake: FakeProxy, mj: mjasync.Client) -> None:
    parent = await finished(mj)
    custom_id = f"MJ::JOB::upsample::4::{fake.jobs[parent.id].hash}"
    info = await (await mj.action(parent, custom_id)).wait(timeout=10)
    assert info.action is mjasync.TaskAction.UPSCALE
    if fake.dialect == "reference":  # no /submit/action: tried once, then change
        assert fake.stats.requests["POST /mj/submit/action"] == 1
        assert bodies(fake, "POST /mj/submit/change") == [{"taskId": parent.id, "action": "UPSCALE", "index": 4}]
        await mj.action(parent.id, custom_id)
        assert fake.stats.requests["POST /mj/submit/action"] == 1, "remembered"
    else:
        assert bodies(fake, "POST /mj/submit/action") == [{"taskId": parent.id, "customId": custom_id}]


# --- the buttons of an upscaled image ---


@pytest.mark.parametrize(
    ("press", "prefix", "action", "relay_action"),
    [
        (lambda t: t.zoom(2), "MJ::Outpaint::50::1::", "ZOOM", "ZOOM"),
        (lambda t: t.zoom(1.5), "MJ::Outpaint::75::1::", "ZOOM", "ZOOM"),
        (lambda t: t.pan("left"), "MJ::JOB::pan_left::1::", "PAN", "PAN"),
        (lambda t: t.pan("up"), "MJ::JOB::pan_up::1::", "PAN", "PAN"),
        (lambda t: t.vary(), "MJ::JOB::low_variation::1::", "VARIATION", "LOW_VARIATION"),
        (lambda t: t.vary(strong=True), "MJ::JOB::high_variation::1::", "VARIATION", "HIGH_VARIATION"),
        (lambda t: t.upscale_hd("creative"), "MJ::JOB::upsample_v6_2x_creative::1::", "UPSCALE_HD", "UPSCALE"),
    ],
)
@WITH_BUTTONS
async def test_upscaled_helpers_round_trip(
    fake: FakeProxy,
    mj: mjasync.Client,
    press: Callable[[mjasync.Task], Awaitable[mjasync.Task]],
    prefix: str,
    action: str,
    relay_action: str,
) -> None:
    parent = await upscaled(fake, mj)
    info = await (await press(parent)).wait(timeout=10)
    assert info.action.value == (relay_action if fake.dialect == "relay" else action)
    body = bodies(fake, "POST /mj/submit/action")[-1]
    assert body == {"taskId": parent.id, "customId": f"{prefix}{fake.jobs[parent.id].hash}::SOLO"}


@pytest.mark.parametrize("fake", ["reference"], indirect=True)
async def test_reference_refuses_buttons_it_does_not_show(fake: FakeProxy, mj: mjasync.Client) -> None:
    parent = await upscaled(fake, mj)
    sent = len(fake.requests)
    for press in (parent.zoom(2), parent.pan("down"), parent.vary_region(), parent.upscale(1)):
        with pytest.raises(mjasync.InvalidRequestError, match="no buttons"):
            await press
    assert len(fake.requests) == sent, "refused before any request"


async def test_helpers_refuse_missing_buttons_before_any_request(fake: FakeProxy, mj: mjasync.Client) -> None:
    grid = await finished(mj)
    sent = len(fake.requests)
    for press in (grid.zoom(2), grid.pan("right"), grid.vary(strong=True), grid.upscale_hd()):
        with pytest.raises(mjasync.InvalidRequestError):
            await press
    assert len(fake.requests) == sent


# --- MODAL: Vary Region, Custom Zoom, remix ---


@WITH_BUTTONS
async def test_vary_region_waits_for_modal_then_finishes(fake: FakeProxy, mj: mjasync.Client) -> None:
    parent = await upscaled(fake, mj)
    region = await parent.vary_region()
    assert region.submit_result is not None and region.submit_result.code == 21
    with pytest.raises(mjasync.ActionRequiredError) as caught:
        await region.wait(timeout=10)
    assert (caught.value.modal_kind, caught.value.task_id) == ("vary_region", region.id)
    again = await mj.modal(caught.value.task_id, prompt="a red hat", mask_base64=MASK)
    assert again.id == region.id
    info = await again.wait(timeout=10)
    assert info.prompt == "a red hat"
    assert bodies(fake, "POST /mj/submit/modal") == [
        {"taskId": region.id, "prompt": "a red hat", "maskBase64": f"data:image/png;base64,{MASK}"}
    ]
    assert fake.jobs[region.id].custom_id.startswith("MJ::Inpaint::")


@WITH_BUTTONS
async def test_custom_zoom_waits_for_a_zoom_prompt(fake: FakeProxy, mj: mjasync.Client) -> None:
    parent = await upscaled(fake, mj)
    zoom = await parent.zoom("custom")
    with pytest.raises(mjasync.ActionRequiredError) as caught:
        await zoom.wait(timeout=10)
    assert caught.value.modal_kind == "custom_zoom"
    assert (await (await mj.modal(zoom, prompt="a red fox --zoom 1.8")).wait(timeout=10)).succeeded
    assert bodies(fake, "POST /mj/submit/modal")[-1] == {"taskId": zoom.id, "prompt": "a red fox --zoom 1.8"}


@pytest.mark.parametrize("dialect", ["extended", "relay"])
async def test_remix_mode_makes_variations_modal_even_when_relays_say_code_1(dialect: Any) -> None:
    async with FakeProxy(dialect, job_seconds=0.05, remix=True) as fake, client_for(fake) as mj:
        variation = await (await finished(mj)).vary(2)
        assert variation.submit_result is not None
        assert variation.submit_result.code == (1 if dialect == "relay" else 21)
        with pytest.raises(mjasync.ActionRequiredError) as caught:
            await variation.wait(timeout=10)
        assert caught.value.modal_kind == "remix"
        rebuilt = mj.task(await mj.fetch(variation.id))  # from the task's own fields this time
        with pytest.raises(mjasync.ActionRequiredError) as again:
            await rebuilt.wait(timeout=10)
        assert again.value.modal_kind == "remix"
        assert (await (await mj.modal(variation)).wait(timeout=10)).succeeded
        assert bodies(fake, "POST /mj/submit/modal") == [{"taskId": variation.id}]


# --- fresh parent: the server's asynchronous save ---


async def test_an_action_right_after_success_is_retried_until_the_parent_is_saved(fake: FakeProxy) -> None:
    fake.save_lag = 0.15
    async with client_for(fake, retry_backoff=0.05) as mj:
        parent = await finished(mj)
        child = await parent.upscale(1)
        assert (await child.wait(timeout=10)).succeeded
        route = "POST /mj/submit/change" if fake.dialect == "reference" else "POST /mj/submit/action"
        assert fake.stats.requests[route] >= 2
        assert mj.stats.retries == fake.stats.requests[route] - 1
        assert fake.stats.accepted_submits == 2


# --- blend, describe, shorten, swap face ---


async def test_blend_and_describe_everywhere(fake: FakeProxy, mj: mjasync.Client) -> None:
    blend = await (await mj.blend([PNG, PNG, PNG], dimensions="PORTRAIT")).wait(timeout=10)
    assert blend.action is mjasync.TaskAction.BLEND
    assert bodies(fake, "POST /mj/submit/blend") == [
        {"botType": "MID_JOURNEY", "base64Array": [PNG, PNG, PNG], "dimensions": "PORTRAIT"}
    ]
    described = await (await mj.describe(base64.b64decode(PNG.split(",")[1]))).wait(timeout=10)
    assert described.action is mjasync.TaskAction.DESCRIBE
    assert described.final_prompt is not None and described.final_prompt.startswith("1️⃣")
    assert bodies(fake, "POST /mj/submit/describe") == [{"botType": "MID_JOURNEY", "base64": PNG}]


SERVES: dict[str, set[str]] = {
    "reference": {"list", "queue"},
    "extended": {"shorten", "swap", "seed", "upload", "cancel", "list", "edits", "video"},
    "relay": {"shorten", "swap", "seed", "upload"},
}


async def test_shorten_and_swap_face_where_served(fake: FakeProxy, mj: mjasync.Client) -> None:
    calls: dict[str, Callable[[], Awaitable[mjasync.Task]]] = {
        "shorten": lambda: mj.shorten("a very long prompt about a red fox in the snow"),
        "swap": lambda: mj.swap_face(PNG, "https://example.com/target.png"),
    }
    for name, call in calls.items():
        if name in SERVES[fake.dialect]:
            info = await (await call()).wait(timeout=10)
            assert info.succeeded
        else:
            with pytest.raises(mjasync.UnsupportedEndpointError, match="served by"):
                await call()
    if "shorten" in SERVES[fake.dialect]:
        assert bodies(fake, "POST /mj/submit/shorten") == [
            {"botType": "MID_JOURNEY", "prompt": "a very long prompt about a red fox in the snow"}
        ]
        assert bodies(fake, "POST /mj/insight-face/swap") == [
            {"sourceBase64": PNG, "targetUrl": "https://example.com/target.png"}
        ]
    assert fake.stats.accepted_submits == (2 if "shorten" in SERVES[fake.dialect] else 0)


async def test_edit_retexture_and_video_where_served(fake: FakeProxy, mj: mjasync.Client) -> None:
    if "edits" not in SERVES[fake.dialect]:
        for call in (mj.edit("x", PNG), mj.retexture("x", PNG), mj.video("x", PNG)):
            with pytest.raises(mjasync.UnsupportedEndpointError, match="extended server"):
                await call
        return
    edited = await (await mj.edit("make it night", PNG)).wait(timeout=10)
    textured = await (await mj.retexture("glass and chrome", "https://example.com/a.png")).wait(timeout=10)
    assert (edited.action, textured.action) == (mjasync.TaskAction.EDIT, mjasync.TaskAction.RETEXTURE)
    clip = await (await mj.video("the fox runs", PNG, motion="high", batch_size=2)).wait(timeout=10)
    assert clip.action is mjasync.TaskAction.VIDEO and clip.video_url is not None
    longer = await (await mj.extend_video(clip, 1, "and jumps")).wait(timeout=10)
    assert longer.action is mjasync.TaskAction.VIDEO_EXTEND and fake.jobs[longer.id].parent_id == clip.id
    assert bodies(fake, "POST /mj/submit/edits") == [{"prompt": "make it night", "image": PNG}]
    assert bodies(fake, "POST /mj/submit/video") == [
        {"prompt": "the fox runs", "motion": "high", "image": PNG, "batchSize": 2},
        {"prompt": "and jumps", "motion": "low", "action": "extend", "taskId": clip.id, "task_id": clip.id,
         "index": 1},
    ]


async def test_seed_upload_and_lists_where_served(fake: FakeProxy, mj: mjasync.Client) -> None:
    done = await finished(mj)
    served = SERVES[fake.dialect]
    if "seed" in served:
        assert await mj.image_seed(done) == fake.jobs[done.id].seed
        assert fake.stats.requests["GET /mj/task/{id}/image-seed"] == 1
    if "upload" in served:
        (url,) = await mj.upload_images([PNG])
        assert bodies(fake, "POST /mj/submit/upload-discord-images") == [{"base64Array": [PNG]}]
        assert await mj.read_image(url) == base64.b64decode(PNG.split(",")[1])
    if "list" in served:
        assert done.id in [info.id for info in await mj.list_tasks()]
    if "queue" in served:
        assert await mj.list_queue() == []
    missing: dict[str, Callable[[], Awaitable[object]]] = {
        "seed": lambda: mj.image_seed(done),
        "upload": lambda: mj.upload_images([PNG]),
        "list": mj.list_tasks,
        "queue": mj.list_queue,
    }
    for name, call in missing.items():
        if name not in served:
            with pytest.raises(mjasync.UnsupportedEndpointError):
                await call()


async def test_cancel_is_explicit_and_only_where_served(fake: FakeProxy, mj: mjasync.Client) -> None:
    stuck = await mj.imagine("a STUCKJOB lighthouse")
    with pytest.raises(mjasync.WaitTimeoutError):
        await stuck.wait(timeout=0.1)
    assert fake.stats.requests["POST /mj/task/{id}/cancel"] == 0, "a timed-out wait cancels nothing"
    if "cancel" not in SERVES[fake.dialect]:
        with pytest.raises(mjasync.UnsupportedEndpointError):
            await mj.cancel(stuck)
        return
    await mj.cancel(stuck)
    with pytest.raises(mjasync.TaskFailedError) as caught:
        await stuck.wait(timeout=10)
    assert caught.value.task.fail_kind == "cancelled"
    (cancel,) = [r for r in fake.requests if r.route == "POST /mj/task/{id}/cancel"]
    assert cancel.path == f"/mj/task/{stuck.id}/cancel" and cancel.json is None


@pytest.mark.parametrize("fake", [d for d, served in SERVES.items() if "seed" in served], indirect=True)
async def test_image_seed_of_an_unknown_task(fake: FakeProxy, mj: mjasync.Client) -> None:
    with pytest.raises(mjasync.TaskNotFoundError):
        await mj.image_seed("9999999999999999")


# --- downloads ---


async def test_download_the_result_of_a_task(fake: FakeProxy, mj: mjasync.Client, tmp_path: Path) -> None:
    task = await finished(mj)
    path = await task.download(tmp_path)
    assert path == tmp_path / f"{task.id}.png"
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (await mj.download(task.last or task, tmp_path / "copy.png")).name == "copy.png"
