"""Decoding every example payload of protocol.md (all dialects), and the converter's rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mjasync import Button, SubmitResult, TaskAction, TaskInfo, TaskStatus
from mjasync._convert import join_state, split_state, structure, unstructure

REF_SUCCESS: dict[str, Any] = {
    "id": "14001929738841620", "action": "IMAGINE", "status": "SUCCESS", "prompt": "猫猫", "promptEn": "Cat",
    "description": "/imagine 猫猫", "state": None, "submitTime": 1689231405854, "startTime": 1689231442755,
    "finishTime": 1689231544312, "progress": "100%",
    "imageUrl": "https://cdn.discordapp.com/attachments/xxx/xxx/xxxx.png", "failReason": None,
    "properties": {"finalPrompt": "Cat"},
}
EXT_EXTRAS: dict[str, Any] = {
    "isCompleted": True, "botType": "MID_JOURNEY", "parentId": None, "mode": "FAST", "version": "v 7",
    "useTime": "28.53 s", "jobId": "900953f3-b33f-4605-ac62-e5d17d71fb9c",
    "imageUrls": [{"url": "https://cdn.midjourney.com/900953f3/0_0.png", "thumbnail": "…/0_0_640_N.webp"}],
    "displays": {"status": "SUCCESS"},
    "buttons": [{"customId": "MJ::JOB::upsample::1::900953f3-b33f-4605-ac62-e5d17d71fb9c", "emoji": "",
                 "label": "U1", "style": 2, "type": 2}],
}
RELAY_SUCCESS: dict[str, Any] = {
    "id": "1730621826053455", "action": "IMAGINE", "customId": "", "botType": "", "prompt": "pig --v 6.1",
    "promptEn": "pig --v 6.1", "description": "Submit success", "state": "", "submitTime": 1730621826053,
    "startTime": 1730621828024, "finishTime": 1730621855817, "status": "SUCCESS", "progress": "100%",
    "failReason": "", "maskBase64": "",
    "imageUrl": "https://cdnmjp.oneabc.org/attachments/…/…_pig_3785da15.png?ex=6728831f&is=6727319f&hm=…&",
    "buttons": [{"customId": "MJ::JOB::reroll::0::3785da15-4f70-4034-9128-f3ff1ac634fa::SOLO", "emoji": "🔄",
                 "label": "", "type": 2, "style": 2}],
    "properties": {"finalPrompt": "pig --v 6.1", "finalZhPrompt": ""},
}

# (name, overrides on REF_SUCCESS, expected status, expected progress)
VARIANTS: list[tuple[str, dict[str, Any], TaskStatus, int | None]] = [
    ("ref SUBMITTED", {"status": "SUBMITTED", "progress": "0%", "finishTime": None, "imageUrl": None},
     TaskStatus.SUBMITTED, 0),
    ("ref IN_PROGRESS", {"status": "IN_PROGRESS", "progress": "46%",
                         "imageUrl": "https://cdn.discordapp.com/attachments/…/a3c4ad2b_grid_0.webp"},
     TaskStatus.IN_PROGRESS, 46),
    ("ref FAILURE", {"id": "1697331893886769", "status": "FAILURE", "progress": "", "finishTime": 1689322122289,
                     "imageUrl": None, "failReason": "任务超时"}, TaskStatus.FAILURE, None),
    ("ext SUCCESS", {**EXT_EXTRAS}, TaskStatus.SUCCESS, 100),
    ("ext SUBMITTED", {"status": "SUBMITTED", "isCompleted": False, "progress": "0%", "imageUrl": None,
                       "buttons": []}, TaskStatus.SUBMITTED, 0),
    ("ext IN_PROGRESS", {"status": "IN_PROGRESS", "isCompleted": False, "progress": "62%",
                         "imageUrl": "https://cdn.discordapp.com/attachments/…/x_grid_0.webp?ex=683142b8&is=682ff138&hm=…&"},
     TaskStatus.IN_PROGRESS, 62),
    ("ext FAILURE", {"status": "FAILURE", "isCompleted": True, "progress": "", "failReason": "执行超时 5 分钟",
                     "imageUrl": None, "buttons": []}, TaskStatus.FAILURE, None),
    ("ext MODAL", {"id": "1747972455248636", "parentId": "1747972390541812", "action": "VARIATION",
                   "status": "MODAL", "description": "/up 1747972390541812 V4",
                   "properties": {"finalPrompt": "batman jocker --v 7.0", "remix": True}}, TaskStatus.MODAL, 100),
    ("plus MODAL? without status", {"id": "1747972455248636", "action": "VARIATION", "progress": "0%",
                                    "imageUrl": None, "buttons": [], "displays": {"status": "执行中"}, "status": None,
                                    "properties": {"customId": "MJ::JOB::variation::4::900953f3",
                                                   "modalCustomId": "MJ::RemixModal::900953f3::4::1"}},
     TaskStatus.UNKNOWN, 0),
    ("relay queued", {"status": "", "progress": "", "description": "排队中,前面还有19个任务", "startTime": 0,
                      "finishTime": 0, "imageUrl": "", "failReason": "", "buttons": []}, TaskStatus.UNKNOWN, None),
    ("relay IN_PROGRESS", {"status": "IN_PROGRESS", "progress": "46%", "finishTime": 0,
                           "imageUrl": "https://relay.example.com/mj/image/1730621826053455?rand=17306218401"},
     TaskStatus.IN_PROGRESS, 46),
    ("relay FAILURE", {"status": "FAILURE", "progress": "", "failReason": "上游任务超时（超过1小时）", "imageUrl": ""},
     TaskStatus.FAILURE, None),
    ("relay MODAL", {"id": "1730622000111222", "action": "INPAINT", "status": "MODAL", "progress": "",
                     "imageUrl": ""}, TaskStatus.MODAL, None),
    ("relay variant extras", {"mode": "FAST", "proxy": "x", "imageWidth": 1024, "imageHeight": 1024, "cost": 0.1},
     TaskStatus.SUCCESS, 100),
]


def test_reference_success_decodes_every_field() -> None:
    info = structure(REF_SUCCESS, TaskInfo)
    assert info.id == "14001929738841620"
    assert info.action is TaskAction.IMAGINE
    assert info.status is TaskStatus.SUCCESS and info.succeeded and info.is_terminal
    assert (info.prompt, info.prompt_en, info.description) == ("猫猫", "Cat", "/imagine 猫猫")
    assert info.submit_time == datetime(2023, 7, 13, 6, 56, 45, 854000, tzinfo=UTC)
    assert info.finish_time is not None and info.finish_time.tzinfo is UTC
    assert (info.progress, info.progress_text) == (100, "100%")
    assert info.image_url == "https://cdn.discordapp.com/attachments/xxx/xxx/xxxx.png"
    assert info.properties == {"finalPrompt": "Cat"}
    assert info.extra == {}
    assert info.state is None and info.state_tag is None


@pytest.mark.parametrize(("name", "overrides", "status", "progress"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_every_dialect_example_decodes(
    name: str, overrides: dict[str, Any], status: TaskStatus, progress: int | None
) -> None:
    wire = {**REF_SUCCESS, **overrides}
    info = structure(wire, TaskInfo)
    assert info.status is status
    assert info.progress == progress
    for key, value in overrides.items():
        if key in ("isCompleted", "displays", "parentId", "mode", "proxy", "cost", "useTime", "imageUrls"):
            assert info.extra[key] == value, "unknown fields are kept under their wire names"
    assert structure(unstructure(info), TaskInfo) == info


def test_relay_success_unset_values_become_none_and_buttons_decode() -> None:
    info = structure(RELAY_SUCCESS, TaskInfo)
    assert info.fail_reason is None and info.state is None
    assert info.extra["maskBase64"] == "" and info.extra["customId"] == ""
    (button,) = info.buttons
    assert button == Button(custom_id="MJ::JOB::reroll::0::3785da15-4f70-4034-9128-f3ff1ac634fa::SOLO", emoji="🔄")


def test_relay_zero_times_are_none() -> None:
    info = structure({**RELAY_SUCCESS, "startTime": 0, "finishTime": 0}, TaskInfo)
    assert info.start_time is None and info.finish_time is None


def test_numeric_id_becomes_string() -> None:
    assert structure({"id": 1730621826053455}, TaskInfo).id == "1730621826053455"


def test_unknown_enum_values_are_kept_not_fatal() -> None:
    info = structure({"id": "1", "status": "PAUSED", "action": "NEW_THING"}, TaskInfo)
    assert isinstance(info.status, TaskStatus) and info.status.value == "PAUSED"
    assert not info.status.is_known and not info.is_terminal
    assert info.action.value == "NEW_THING"
    assert TaskAction("BLEAND") is TaskAction.BLEND


def test_progress_text_kept_when_not_a_percent() -> None:
    info = structure({"id": "1", "progress": "Waiting to start"}, TaskInfo)
    assert info.progress is None and info.progress_text == "Waiting to start"


@pytest.mark.parametrize(
    ("reason", "kind"),
    [("任务超时", "timeout"), ("执行超时 5 分钟", "timeout"), ("可能包含敏感词", "banned"),
     ("[Invalid parameter] Invalid value", "invalid"), ("实例不可用", "unavailable"), ("取消任务", "cancelled"),
     ("Failed to process", "other")],
)
def test_fail_kind(reason: str, kind: str) -> None:
    assert structure({"id": "1", "status": "FAILURE", "failReason": reason}, TaskInfo).fail_kind == kind


@pytest.mark.parametrize(
    "payload",
    [
        {"code": 1, "description": "Submit success", "result": "1730621718151844",
         "properties": {"discordChannelId": "1300842676874379336", "discordInstanceId": "1572398367386955776"}},
        {"code": 1, "description": "成功", "result": 8498455807619990},
        {"code": 22, "description": "排队中，前面还有1个任务", "result": "0741798445574458",
         "properties": {"numberOfQueues": 1, "discordInstanceId": "1118138338562560102"}},
        {"code": 21, "description": "任务已存在", "result": "0741798445574458",
         "properties": {"status": "SUCCESS", "imageUrl": "https://xxxx"}},
        {"code": 21, "description": "Waiting for window confirm", "result": "1747972455248636",
         "properties": {"finalPrompt": "batman jocker --v 7.0", "remix": True}},
        {"code": 23, "description": "队列已满，请稍后尝试", "result": None, "properties": {"discordInstanceId": "…"}},
        {"code": 24, "description": "可能包含敏感词", "result": None,
         "properties": {"promptEn": "nude body", "bannedWord": "nude"}},
        {"code": 1, "description": "提交成功", "result": ["https://cdn.discordapp.com/attachments/…/upload.png"]},
        {"code": 1, "description": "成功", "result": "636646138"},
    ],
)
def test_submit_envelopes_decode(payload: dict[str, Any]) -> None:
    result = structure(payload, SubmitResult)
    assert result.code == payload["code"]
    expected = payload["result"]
    if isinstance(expected, int):
        expected = str(expected)
    assert result.result == expected
    assert unstructure(result)["code"] == payload["code"]


def test_callback_payload_with_tagged_state() -> None:
    tag = "mja-" + "5f0c9d2e" * 4
    info = structure({**REF_SUCCESS, "status": "IN_PROGRESS", "progress": "62%", "state": tag}, TaskInfo)
    assert info.state is None and info.state_tag == tag


@pytest.mark.parametrize("state", [None, "", "order-17", "a:b", "x" * 200, "mja-" + "0" * 32])
def test_state_merge_is_reversible(state: str | None) -> None:
    tag = "mja-" + "ab" * 16
    assert split_state(join_state(state, tag)) == (state or None, tag)


def test_state_without_tag_is_the_callers() -> None:
    assert split_state("hello") == ("hello", None)
