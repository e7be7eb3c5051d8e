"""Follow-up actions against mocked HTTP: customId parsing, button resolution, the reference
server's change fallback, the fresh-parent retry, modal, and unsupported endpoints."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mjasync
from tests.conftest import BASE_URL, MockedHTTP

HASH = "3785da15-4f70-4034-9128-f3ff1ac634fa"
ACTION = BASE_URL + "/mj/submit/action"
CHANGE = BASE_URL + "/mj/submit/change"
MODAL = BASE_URL + "/mj/submit/modal"
LIST = BASE_URL + "/mj/task/list-by-condition"
ACCEPTED = {"code": 1, "description": "ok", "result": "2"}
PNG = "data:image/png;base64,iVBORw0KGgo="

GRID = [f"MJ::JOB::upsample::{i}::{HASH}" for i in range(1, 5)] + [f"MJ::JOB::reroll::0::{HASH}::SOLO"] + [
    f"MJ::JOB::variation::{i}::{HASH}" for i in range(1, 5)
]
UPSCALED = [
    f"MJ::JOB::upsample_v7_2x_subtle::1::{HASH}::SOLO",
    f"MJ::JOB::low_variation::1::{HASH}::SOLO",
    f"MJ::JOB::high_variation::1::{HASH}::SOLO",
    f"MJ::Inpaint::1::{HASH}::SOLO",
    f"MJ::Outpaint::50::1::{HASH}::SOLO",
    f"MJ::Outpaint::75::1::{HASH}::SOLO",
    f"MJ::CustomZoom::{HASH}",
    *(f"MJ::JOB::pan_{d}::1::{HASH}::SOLO" for d in ("left", "right", "up", "down")),
]


def task(custom_ids: list[str], *, action: str = "IMAGINE", status: str = "SUCCESS", **extra: Any) -> mjasync.TaskInfo:
    buttons = tuple(mjasync.Button(custom_id=c) for c in custom_ids)
    return mjasync.TaskInfo(
        id="1", action=mjasync.TaskAction(action), status=mjasync.TaskStatus(status), buttons=buttons, **extra
    )


def sent(http: MockedHTTP, path: str) -> list[dict[str, Any]]:
    return [json.loads(call.kwargs["data"]) for call in http.calls("POST", path)]


def without_state(body: dict[str, Any]) -> dict[str, Any]:
    assert body.pop("state").startswith("mja-")
    return body


# --- customId grammar (protocol.md 7.6) ---


@pytest.mark.parametrize(
    ("raw", "family", "kind", "index", "hash_", "value"),
    [
        (f"MJ::JOB::upsample::2::{HASH}", "JOB", "upsample", 2, HASH, None),
        (f"MJ::JOB::variation::4::{HASH}", "JOB", "variation", 4, HASH, None),
        (f"MJ::JOB::high_variation::1::{HASH}::SOLO", "JOB", "high_variation", 1, HASH, None),
        (f"MJ::JOB::reroll::0::{HASH}::SOLO", "JOB", "reroll", 0, HASH, None),
        (f"MJ::Inpaint::1::{HASH}::SOLO", "Inpaint", "inpaint", 1, HASH, None),
        (f"MJ::Outpaint::75::1::{HASH}::SOLO", "Outpaint", "outpaint", 1, HASH, 75),
        (f"MJ::CustomZoom::{HASH}", "CustomZoom", "custom_zoom", None, HASH, None),
        (f"MJ::CustomZoom::1::{HASH}", "CustomZoom", "custom_zoom", 1, HASH, None),
        (f"MJ::JOB::pan_left::1::{HASH}::SOLO", "JOB", "pan_left", 1, HASH, None),
        (f"MJ::JOB::upsample_v6r1_2x_creative::1::{HASH}::SOLO", "JOB", "upsample_v6r1_2x_creative", 1, HASH, None),
        ("MJ::Job::PicReader::3", "Job", "pic_reader", 3, None, None),
        ("MJ::Picread::Retry", "Picread", "picread", None, None, None),
        (f"MJ::RemixModal::{HASH}::4::1", "RemixModal", "remix_modal", 4, HASH, None),
        ("MJ::BOOKMARK::x", "BOOKMARK", "bookmark", None, None, None),
    ],
)
def test_custom_id_grammar(
    raw: str, family: str, kind: str, index: int | None, hash_: str | None, value: int | None
) -> None:
    parsed = mjasync.parse_custom_id(raw)
    assert (parsed.family, parsed.kind, parsed.index, parsed.hash, parsed.value) == (family, kind, index, hash_, value)
    assert str(parsed) == parsed.raw == raw
    assert mjasync.Button(custom_id=raw).parsed == parsed


@pytest.mark.parametrize("raw", ["", "hello", "MJ", "MJ::", "mj::JOB::upsample::1::x", "::JOB", "MJ::JOB::upsample::99999999999999999999::x"])
def test_unknown_custom_ids_keep_the_raw_string(raw: str) -> None:
    parsed = mjasync.parse_custom_id(raw)
    assert parsed.raw == raw
    if not raw.startswith("MJ::") or raw == "MJ::":
        assert (parsed.family, parsed.kind, parsed.index, parsed.hash) == (None, None, None, None)


@given(st.text())
def test_parse_custom_id_never_raises(raw: str) -> None:
    assert mjasync.parse_custom_id(raw).raw == raw


@given(st.lists(st.sampled_from(["MJ", "JOB", "1", "0", "50", HASH, "SOLO", "", "x", "ü"]), max_size=7))
def test_parse_custom_id_never_raises_on_grammar_like_ids(parts: list[str]) -> None:
    parsed = mjasync.parse_custom_id("::".join(parts))
    assert parsed.index is None or parsed.index >= 0


def test_find_button_is_a_pure_lookup() -> None:
    info = task(GRID)
    found = info.find_button("variation", 3)
    assert found is not None and found.custom_id == GRID[7]
    assert info.find_button("reroll") is not None
    assert info.find_button("pan_left") is None


# --- helpers refuse what the parent lacks, before any request ---


@pytest.mark.parametrize(
    ("buttons", "call"),
    [
        (GRID, lambda t: t.zoom(2)),
        (GRID, lambda t: t.pan("left")),
        (GRID, lambda t: t.vary_region()),
        (GRID, lambda t: t.vary(strong=True)),
        (GRID, lambda t: t.upscale_hd()),
        (UPSCALED, lambda t: t.upscale(1)),
        (UPSCALED, lambda t: t.reroll()),
        (UPSCALED, lambda t: t.vary(2)),
        ([], lambda t: t.zoom(1.5)),
    ],
)
async def test_helpers_refuse_buttons_the_parent_lacks(
    http: MockedHTTP, client: mjasync.Client, buttons: list[str], call: Any
) -> None:
    handle = client.task(task(buttons, action="UPSCALE" if buttons is UPSCALED else "IMAGINE"))
    with pytest.raises(mjasync.InvalidRequestError, match=r"has no .* button"):
        await call(handle)
    assert http.requests == {}, "refused before any request"


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.upscale(0),
        lambda t: t.upscale(5),
        lambda t: t.upscale(True),
        lambda t: t.vary(2, strong=True),
        lambda t: t.vary(1, strong="yes"),
        lambda t: t.zoom(3),
        lambda t: t.zoom("2x"),
        lambda t: t.pan("north"),
        lambda t: t.upscale_hd("sharp"),
    ],
)
async def test_helpers_validate_their_arguments_before_any_request(
    http: MockedHTTP, client: mjasync.Client, call: Any
) -> None:
    with pytest.raises(mjasync.InvalidRequestError):
        await call(client.task("1"))  # no snapshot: not even a fetch is sent
    assert http.requests == {}


async def test_a_helper_on_an_unfinished_parent_fetches_then_refuses(http: MockedHTTP, client: mjasync.Client) -> None:
    http.get(BASE_URL + "/mj/task/1/fetch", payload={"id": "1", "status": "IN_PROGRESS", "progress": "46%"})
    with pytest.raises(mjasync.InvalidRequestError, match="IN_PROGRESS"):
        await client.task("1").upscale(1)
    assert not http.calls("POST", "/mj/submit/action")


@pytest.mark.parametrize(
    ("buttons", "call", "custom_id"),
    [
        (GRID, lambda t: t.upscale(3), GRID[2]),
        (GRID, lambda t: t.vary(4), GRID[8]),
        (GRID, lambda t: t.reroll(), GRID[4]),
        (UPSCALED, lambda t: t.vary(), UPSCALED[1]),
        (UPSCALED, lambda t: t.vary(1), UPSCALED[1]),
        (UPSCALED, lambda t: t.vary(strong=True), UPSCALED[2]),
        (UPSCALED, lambda t: t.zoom(2), UPSCALED[4]),
        (UPSCALED, lambda t: t.zoom(1.5), UPSCALED[5]),
        (UPSCALED, lambda t: t.zoom("custom"), UPSCALED[6]),
        (UPSCALED, lambda t: t.pan("down"), UPSCALED[10]),
        (UPSCALED, lambda t: t.vary_region(), UPSCALED[3]),
        (UPSCALED, lambda t: t.upscale_hd("subtle"), UPSCALED[0]),
    ],
)
async def test_helpers_send_the_parents_own_custom_id(
    http: MockedHTTP, client: mjasync.Client, buttons: list[str], call: Any, custom_id: str
) -> None:
    http.post(ACTION, payload=ACCEPTED)
    child = await call(client.task(task(buttons)))
    assert child.id == "2"
    assert [without_state(b) for b in sent(http, "/mj/submit/action")] == [{"taskId": "1", "customId": custom_id}]


async def test_a_helper_fetches_the_parent_when_the_handle_has_no_snapshot(
    http: MockedHTTP, client: mjasync.Client
) -> None:
    wire = {"id": "1", "status": "SUCCESS", "buttons": [{"customId": c} for c in GRID]}
    http.get(BASE_URL + "/mj/task/1/fetch", payload=wire)
    http.post(ACTION, payload=ACCEPTED)
    await client.task("1").upscale(2, state="order-9", extra_body={"chooseSameChannel": True})
    (body,) = sent(http, "/mj/submit/action")
    assert body["customId"] == GRID[1] and body["chooseSameChannel"] is True
    assert body["state"].startswith("order-9:mja-")


# --- the reference server: no buttons, no /submit/action ---


@pytest.mark.parametrize(
    ("call", "change"),
    [
        (lambda t: t.upscale(2), {"action": "UPSCALE", "index": 2}),
        (lambda t: t.vary(1), {"action": "VARIATION", "index": 1}),
        (lambda t: t.reroll(), {"action": "REROLL", "index": 1}),
    ],
)
async def test_a_grid_without_buttons_uses_change(
    http: MockedHTTP, client: mjasync.Client, call: Any, change: dict[str, Any]
) -> None:
    http.post(CHANGE, payload=ACCEPTED)
    await call(client.task(task([])))
    assert [without_state(b) for b in sent(http, "/mj/submit/change")] == [{"taskId": "1", **change}]
    assert not http.calls("POST", "/mj/submit/action")


async def test_action_falls_back_to_change_once_the_endpoint_is_missing(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(ACTION, status=404, body="")
    http.post(CHANGE, payload=ACCEPTED, repeat=True)
    await client.action("1", f"MJ::JOB::variation::3::{HASH}")
    await client.action("1", mjasync.Button(custom_id=f"MJ::JOB::upsample::1::{HASH}"))
    assert len(http.calls("POST", "/mj/submit/action")) == 1, "the missing endpoint is remembered"
    assert [(b["action"], b["index"]) for b in sent(http, "/mj/submit/change")] == [("VARIATION", 3), ("UPSCALE", 1)]


async def test_action_without_a_change_equivalent_is_unsupported(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(ACTION, status=405, body="")
    with pytest.raises(mjasync.UnsupportedEndpointError, match="reference server takes /mj/submit/change") as caught:
        await client.action("1", mjasync.parse_custom_id(f"MJ::Outpaint::50::1::{HASH}::SOLO"))
    assert isinstance(caught.value, mjasync.NotFoundError) and caught.value.job_created is False
    assert not http.calls("POST", "/mj/submit/change")


async def test_an_html_404_from_change_is_unsupported_too(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(CHANGE, status=404, body="<html>404</html>", content_type="text/html")
    with pytest.raises(mjasync.UnsupportedEndpointError, match="/mj/submit/change"):
        await client.task(task([])).upscale(1)


@pytest.mark.parametrize("custom_id", ["", "  ", None, 7])
async def test_action_needs_a_custom_id(http: MockedHTTP, client: mjasync.Client, custom_id: Any) -> None:
    with pytest.raises(mjasync.InvalidRequestError):
        await client.action("1", custom_id)
    assert http.requests == {}


# --- fresh parent: codes 3/4 right after SUCCESS are retried a few times ---


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (200, {"code": 3, "description": "关联任务不存在或已失效", "result": None}),
        (200, {"code": 4, "description": "关联任务状态错误", "result": None}),
        (404, {"code": 3, "description": "关联任务不存在或已失效", "result": None}),
        (400, {"description": "task_not_found ", "type": "upstream_error", "code": 4}),
        (400, {"description": "task_status_not_success ", "type": "upstream_error", "code": 4}),
    ],
)
async def test_parent_not_ready_is_retried_then_works(
    http: MockedHTTP, client: mjasync.Client, status: int, payload: dict[str, Any]
) -> None:
    http.post(ACTION, status=status, payload=payload)
    http.post(ACTION, status=status, payload=payload)
    http.post(ACTION, payload=ACCEPTED)
    child = await client.action("1", GRID[0])
    assert child.id == "2"
    assert len(http.calls("POST", "/mj/submit/action")) == 3
    assert client.stats.retries == 2


async def test_parent_not_ready_gives_up_after_three_retries(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(ACTION, payload={"code": 4, "description": "关联任务状态错误", "result": None}, repeat=True)
    with pytest.raises(mjasync.ValidationFailedError):
        await client.action("1", GRID[0])
    assert len(http.calls("POST", "/mj/submit/action")) == 4


@pytest.mark.parametrize(
    "payload",
    [
        {"code": 4, "description": "未知的 Action 类型", "result": None},
        {"code": 24, "description": "可能包含敏感词", "result": None},
    ],
)
async def test_other_action_errors_are_not_retried(
    http: MockedHTTP, client: mjasync.Client, payload: dict[str, Any]
) -> None:
    http.post(ACTION, payload=payload, repeat=True)
    with pytest.raises(mjasync.ProxyResultError):
        await client.action("1", GRID[0])
    assert len(http.calls("POST", "/mj/submit/action")) == 1


async def test_imagine_is_never_retried_for_parent_texts(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(BASE_URL + "/mj/submit/imagine", payload={"code": 4, "description": "关联任务状态错误"}, repeat=True)
    with pytest.raises(mjasync.ValidationFailedError):
        await client.imagine("cat")
    assert len(http.calls("POST", "/mj/submit/imagine")) == 1


# --- MODAL: code 21, ActionRequiredError, modal() ---


@pytest.mark.parametrize(
    ("custom_id", "wire", "kind"),
    [
        (UPSCALED[3], {}, "vary_region"),
        (UPSCALED[6], {}, "custom_zoom"),
        (GRID[5], {"properties": {"finalPrompt": "cat", "remix": True}}, "remix"),
    ],
)
async def test_a_modal_action_waits_for_modal_with_its_kind(
    http: MockedHTTP, client: mjasync.Client, custom_id: str, wire: dict[str, Any], kind: str
) -> None:
    http.post(ACTION, payload={"code": 21, "description": "Waiting for window confirm", "result": "2"})
    http.post(LIST, payload=[{"id": "2", "status": "MODAL", "action": "VARIATION", **wire}], repeat=True)
    child = await client.action("1", custom_id)
    assert child.submit_result is not None and child.submit_result.code == 21
    with pytest.raises(mjasync.ActionRequiredError) as caught:
        await child.wait(timeout=5)
    assert (caught.value.modal_kind, caught.value.task_id) == (kind, "2")
    assert "client.modal('2'" in str(caught.value)


@pytest.mark.parametrize(
    ("wire", "kind"),
    [
        ({"action": "INPAINT"}, "vary_region"),
        ({"action": "CUSTOM_ZOOM"}, "custom_zoom"),
        ({"action": "VARIATION", "properties": {"custom_id": UPSCALED[3]}}, "vary_region"),
        ({"action": "ZOOM", "properties": {"customId": UPSCALED[6]}}, "custom_zoom"),
        ({"action": "VARIATION", "customId": UPSCALED[3]}, "vary_region"),
        ({"action": "VARIATION", "properties": {"modalCustomId": f"MJ::RemixModal::{HASH}::4::1"}}, "remix"),
    ],
)
async def test_modal_kind_of_a_rebuilt_handle_comes_from_the_task(
    http: MockedHTTP, client: mjasync.Client, wire: dict[str, Any], kind: str
) -> None:
    http.post(LIST, payload=[{"id": "2", "status": "MODAL", **wire}], repeat=True)
    with pytest.raises(mjasync.ActionRequiredError) as caught:
        await client.task("2").wait(timeout=5)
    assert caught.value.modal_kind == kind


async def test_modal_sends_task_id_prompt_and_mask(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(MODAL, payload={"code": 1, "description": "ok", "result": "2"}, repeat=True)
    handle = await client.modal("2", prompt="a red hat", mask_base64=b"\x89PNG\r\n\x1a\nxx")
    assert handle.id == "2"
    await client.modal(mjasync.TaskInfo(id="2"))
    first, second = (without_state(b) for b in sent(http, "/mj/submit/modal"))
    assert first == {"taskId": "2", "prompt": "a red hat", "maskBase64": "data:image/png;base64,iVBORw0KGgp4eA=="}
    assert second == {"taskId": "2"}


@pytest.mark.parametrize("kwargs", [{"prompt": 5}, {"mask_base64": "not base64!"}, {"mask_base64": b""}])
async def test_modal_validates_before_any_request(http: MockedHTTP, client: mjasync.Client, kwargs: dict[str, Any]) -> None:
    with pytest.raises(mjasync.InvalidRequestError):
        await client.modal("2", **kwargs)
    assert http.requests == {}


# --- the other endpoints: bodies, answers, unsupported ---


async def test_blend_describe_shorten_and_swap_bodies(http: MockedHTTP, client: mjasync.Client) -> None:
    for path in ("blend", "describe", "shorten"):
        http.post(f"{BASE_URL}/mj/submit/{path}", payload=ACCEPTED)
    http.post(BASE_URL + "/mj/insight-face/swap", payload=ACCEPTED)
    await client.blend([PNG, b"\xff\xd8\xffjpeg"], dimensions="LANDSCAPE")
    await client.describe(PNG, bot_type="NIJI_JOURNEY")
    await client.shorten("a very long prompt")
    await client.swap_face("https://example.com/face.png", PNG)
    assert without_state(sent(http, "/mj/submit/blend")[0]) == {
        "botType": "MID_JOURNEY",
        "base64Array": [PNG, "data:image/jpeg;base64,/9j/anBlZw=="],
        "dimensions": "LANDSCAPE",
    }
    assert without_state(sent(http, "/mj/submit/describe")[0]) == {"botType": "NIJI_JOURNEY", "base64": PNG}
    assert without_state(sent(http, "/mj/submit/shorten")[0]) == {"botType": "MID_JOURNEY", "prompt": "a very long prompt"}
    assert without_state(sent(http, "/mj/insight-face/swap")[0]) == {
        "sourceUrl": "https://example.com/face.png",
        "targetBase64": PNG,
    }


async def test_edit_retexture_and_video_bodies(http: MockedHTTP, client: mjasync.Client) -> None:
    for path in ("edits", "retexture"):
        http.post(f"{BASE_URL}/mj/submit/{path}", payload=ACCEPTED)
    http.post(BASE_URL + "/mj/submit/video", payload=ACCEPTED, repeat=True)
    await client.edit("make it night", PNG)
    await client.retexture("glass and chrome", "https://example.com/a.png")
    await client.video("the fox runs", b"\x89PNG\r\n\x1a\nxx", end_image=PNG, motion="high", loop=True,
                       batch_size=2, video_type="vid_1.1_i2v_720")
    await client.video("the fox runs", "https://example.com/a.png")
    await client.extend_video(mjasync.TaskInfo(id="9"), 3, "and jumps")
    assert without_state(sent(http, "/mj/submit/edits")[0]) == {"prompt": "make it night", "image": PNG}
    assert without_state(sent(http, "/mj/submit/retexture")[0]) == {
        "prompt": "glass and chrome", "image": "https://example.com/a.png"
    }
    full, plain, extend = (without_state(b) for b in sent(http, "/mj/submit/video"))
    assert full == {"prompt": "the fox runs", "motion": "high", "image": "data:image/png;base64,iVBORw0KGgp4eA==",
                    "endImage": PNG, "loop": True, "batchSize": 2, "videoType": "vid_1.1_i2v_720"}
    assert plain == {"prompt": "the fox runs", "motion": "low", "image": "https://example.com/a.png"}
    assert extend == {"prompt": "and jumps", "motion": "low", "action": "extend", "taskId": "9", "task_id": "9",
                      "index": 3}


def test_video_url_comes_from_the_extended_fields() -> None:
    url = "https://cdn.midjourney.com/video/x/0.mp4"
    assert mjasync.TaskInfo(id="1", extra={"videoUrl": url}).video_url == url
    assert mjasync.TaskInfo(id="1", extra={"videoUrl": "", "videoUrls": [{"url": url}]}).video_url == url
    assert mjasync.TaskInfo(id="1", extra={"videoUrls": []}).video_url is None


@pytest.mark.parametrize(
    "call",
    [
        lambda mj: mj.edit("", PNG),
        lambda mj: mj.retexture("x", "ftp://example.com/a.png"),
        lambda mj: mj.video("x", PNG, motion="medium"),
        lambda mj: mj.video("x", PNG, batch_size=3),
        lambda mj: mj.video("x", PNG, batch_size=True),
        lambda mj: mj.video("x", PNG, loop="yes"),
        lambda mj: mj.video("x", PNG, video_type=""),
        lambda mj: mj.video("x", PNG, end_image=b""),
        lambda mj: mj.extend_video("9", 4, "more"),
        lambda mj: mj.extend_video("9", -1, "more"),
        lambda mj: mj.extend_video("9", 0, " "),
    ],
)
async def test_bad_video_and_edit_input_raises_before_any_request(
    http: MockedHTTP, client: mjasync.Client, call: Any
) -> None:
    with pytest.raises(mjasync.InvalidRequestError):
        await call(client)
    assert http.requests == {}


@pytest.mark.parametrize(
    "call",
    [
        lambda mj: mj.blend([PNG]),
        lambda mj: mj.blend([PNG] * 6),
        lambda mj: mj.blend(PNG),
        lambda mj: mj.blend([PNG, PNG], dimensions="WIDE"),
        lambda mj: mj.blend([PNG, "%%%"]),
        lambda mj: mj.describe("not an image"),
        lambda mj: mj.describe(PNG, bot_type="DALL_E"),
        lambda mj: mj.shorten(""),
        lambda mj: mj.shorten("   "),
        lambda mj: mj.swap_face(PNG, ""),
        lambda mj: mj.upload_images([]),
        lambda mj: mj.upload_images([b""]),
        lambda mj: mj.image_seed(""),
        lambda mj: mj.cancel(None),
        lambda mj: mj.list_tasks(timeout=-1),
        lambda mj: mj.action("", GRID[0]),
    ],
)
async def test_bad_input_raises_before_any_request(http: MockedHTTP, client: mjasync.Client, call: Any) -> None:
    with pytest.raises(mjasync.InvalidRequestError):
        await call(client)
    assert http.requests == {}


async def test_image_seed_upload_cancel_and_lists(http: MockedHTTP, client: mjasync.Client) -> None:
    http.get(BASE_URL + "/mj/task/1/image-seed", payload={"code": 1, "description": "成功", "result": 636646138})
    http.post(
        BASE_URL + "/mj/submit/upload-discord-images",
        payload={"code": 1, "description": "提交成功", "result": ["https://cdn.example/a.png"]},
    )
    http.post(BASE_URL + "/mj/task/1/cancel", body="")
    http.post(BASE_URL + "/mj/task/2/cancel", payload={"code": 1, "description": "ok"})
    http.get(BASE_URL + "/mj/task/list", payload=[{"id": "1", "status": "SUCCESS"}, {"id": "2"}, "junk"])
    http.get(BASE_URL + "/mj/task/queue", payload=[])
    assert await client.image_seed(mjasync.TaskInfo(id="1")) == "636646138"
    assert await client.upload_images([PNG]) == ["https://cdn.example/a.png"]
    await client.cancel("1")
    await client.cancel(2)
    assert [t.id for t in await client.list_tasks()] == ["1", "2"]
    assert await client.list_queue() == []
    assert len(http.calls("POST", "/mj/task/1/cancel")) == len(http.calls("POST", "/mj/task/2/cancel")) == 1
    (upload,) = sent(http, "/mj/submit/upload-discord-images")
    assert upload == {"base64Array": [PNG]}, "no state tag: an upload makes no task"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"code": 3, "description": "未找到 seed", "result": None}, mjasync.TaskNotFoundError),
        ({"code": 1, "description": "ok", "result": None}, mjasync.ResponseDecodeError),
        ({"code": 1, "description": "ok", "result": ["a"]}, mjasync.ResponseDecodeError),
        ({"success": False, "code": -1, "message": "演示模式，禁止操作"}, mjasync.ValidationFailedError),
    ],
)
async def test_image_seed_failures(
    http: MockedHTTP, client: mjasync.Client, payload: dict[str, Any], error: type[Exception]
) -> None:
    http.get(BASE_URL + "/mj/task/1/image-seed", payload=payload, repeat=True)
    with pytest.raises(error):
        await client.image_seed("1")


async def test_cancel_refused_is_a_typed_error(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(BASE_URL + "/mj/task/1/cancel", payload={"code": 4, "description": "任务状态错误"})
    with pytest.raises(mjasync.ValidationFailedError):
        await client.cancel("1")


@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("POST", "/mj/submit/shorten", lambda mj: mj.shorten("cat")),
        ("POST", "/mj/submit/modal", lambda mj: mj.modal("1")),
        ("POST", "/mj/submit/upload-discord-images", lambda mj: mj.upload_images([PNG])),
        ("POST", "/mj/insight-face/swap", lambda mj: mj.swap_face(PNG, PNG)),
        ("POST", "/mj/submit/edits", lambda mj: mj.edit("x", PNG)),
        ("POST", "/mj/submit/retexture", lambda mj: mj.retexture("x", PNG)),
        ("POST", "/mj/submit/video", lambda mj: mj.video("x", PNG)),
        ("GET", "/mj/task/1/image-seed", lambda mj: mj.image_seed("1")),
        ("POST", "/mj/task/1/cancel", lambda mj: mj.cancel("1")),
        ("GET", "/mj/task/list", lambda mj: mj.list_tasks()),
        ("GET", "/mj/task/queue", lambda mj: mj.list_queue()),
    ],
)
@pytest.mark.parametrize("status", [404, 405])
async def test_missing_endpoints_raise_unsupported(
    http: MockedHTTP, client: mjasync.Client, method: str, path: str, call: Any, status: int
) -> None:
    http.add(BASE_URL + path, method, status=status, body="404 page not found", content_type="text/plain")
    with pytest.raises(mjasync.UnsupportedEndpointError, match="does not serve this endpoint") as caught:
        await call(client)
    assert caught.value.status_code == status and "served by" in str(caught.value)
    assert len(http.calls(method, path)) == 1, "not retried"


async def test_an_envelope_404_is_not_unsupported(http: MockedHTTP, client: mjasync.Client) -> None:
    http.get(BASE_URL + "/mj/task/9/image-seed", status=404, payload={"code": 3, "description": "任务不存在"})
    with pytest.raises(mjasync.TaskNotFoundError):
        await client.image_seed("9")
