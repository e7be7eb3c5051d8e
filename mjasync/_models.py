"""Frozen snapshots of what the server returns, and the open enums they use."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import attrs

__all__ = ["Button", "ClientStats", "SubmitResult", "TaskAction", "TaskInfo", "TaskStatus"]

_PERCENT: Final = re.compile(r"^(\d{1,3})%$")
_MAX_PSEUDO_MEMBERS: Final = 256


class _OpenEnum(enum.StrEnum):
    """A string enum that keeps values it does not know as pseudo-members (servers add values)."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        alias = cls._aliases().get(value)
        if alias is not None:
            return cls(alias)
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        if len(cls._value2member_map_) < _MAX_PSEUDO_MEMBERS:
            cls._value2member_map_[value] = member
        return member

    @classmethod
    def _aliases(cls) -> Mapping[str, str]:
        return {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self._name_ or 'UNKNOWN'}>"

    @property
    def is_known(self) -> bool:
        """False for a value this version of mjasync does not name."""
        return self._name_ in type(self).__members__


class TaskStatus(_OpenEnum):
    """A task's status. `UNKNOWN` stands for the empty or null status servers send before the first update."""

    UNKNOWN = ""
    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    MODAL = "MODAL"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCEL = "CANCEL"

    @property
    def is_terminal(self) -> bool:
        """SUCCESS, FAILURE and CANCEL never change again."""
        return self in _TERMINAL


_TERMINAL: Final = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILURE, TaskStatus.CANCEL})


class TaskAction(_OpenEnum):
    """What kind of job a task is (ref, plus, ext and relay values)."""

    UNKNOWN = ""
    IMAGINE = "IMAGINE"
    UPSCALE = "UPSCALE"
    VARIATION = "VARIATION"
    REROLL = "REROLL"
    DESCRIBE = "DESCRIBE"
    BLEND = "BLEND"
    ZOOM = "ZOOM"
    PAN = "PAN"
    SHORTEN = "SHORTEN"
    SWAP_FACE = "SWAP_FACE"
    ACTION = "ACTION"
    OUTPAINT = "OUTPAINT"
    INPAINT = "INPAINT"
    SHOW = "SHOW"
    SWAP_VIDEO_FACE = "SWAP_VIDEO_FACE"
    VIDEO = "VIDEO"
    VIDEO_EXTEND = "VIDEO_EXTEND"
    EDIT = "EDIT"
    RETEXTURE = "RETEXTURE"
    PIC_READER = "PIC_READER"
    UPSCALE_HD = "UPSCALE_HD"
    MODAL = "MODAL"
    CUSTOM_ZOOM = "CUSTOM_ZOOM"
    HIGH_VARIATION = "HIGH_VARIATION"
    LOW_VARIATION = "LOW_VARIATION"
    UPLOAD = "UPLOAD"

    @classmethod
    def _aliases(cls) -> Mapping[str, str]:
        return {"BLEAND": "BLEND"}


@attrs.frozen
class Button:
    """A button under a finished job; `custom_id` is what `Client.action` sends."""

    custom_id: str
    """Opaque id such as `MJ::JOB::upsample::1::<hash>`."""
    emoji: str = ""
    label: str = ""
    type: int = 2
    style: int = 2
    extra: Mapping[str, Any] = attrs.field(factory=dict)
    """Fields this version of mjasync does not name, under their wire names."""


def _percent(text: str) -> int | None:
    match = _PERCENT.match(text)
    return int(match.group(1)) if match else None


_FAIL_KINDS: Final = (
    ("timeout", ("超时",)),
    ("banned", ("敏感词", "Banned prompt", "Image denied")),
    ("cancelled", ("取消任务",)),
    ("unavailable", ("实例不可用", "服务异常", "未找到父级任务", "获取渠道信息失败")),
    ("invalid", ("[Invalid",)),
)


@attrs.frozen
class TaskInfo:
    """One snapshot of a task as the server reported it; plain data, no I/O."""

    id: str
    action: TaskAction = TaskAction.UNKNOWN
    status: TaskStatus = TaskStatus.UNKNOWN
    prompt: str | None = None
    prompt_en: str | None = None
    description: str | None = None
    """Slash command (ref, ext) or the submit text (relays); never branch on it."""
    state: str | None = None
    """The caller's own `state`, with the SDK's tag removed."""
    state_tag: str | None = None
    """The SDK's submit tag (`mja-<hex>`) found in the wire `state`, if any."""
    submit_time: datetime | None = None
    start_time: datetime | None = None
    finish_time: datetime | None = None
    progress_text: str = ""
    """The raw progress value: `"46%"`, `""` or text such as `"Waiting to start"`."""
    image_url: str | None = None
    """Preview while running, the final grid on SUCCESS; signed CDN links expire after about a day."""
    fail_reason: str | None = None
    buttons: tuple[Button, ...] = ()
    properties: Mapping[str, Any] = attrs.field(factory=dict)
    extra: Mapping[str, Any] = attrs.field(factory=dict)
    """Every wire field this version of mjasync does not name (`imageUrls`, `buttons` extras, ...)."""

    @property
    def progress(self) -> int | None:
        """Percent parsed from `progress_text`, or None when the server sent text or nothing."""
        return _percent(self.progress_text)

    @property
    def is_terminal(self) -> bool:
        """True once the status is SUCCESS, FAILURE or CANCEL."""
        return self.status.is_terminal

    @property
    def succeeded(self) -> bool:
        return self.status is TaskStatus.SUCCESS

    @property
    def fail_kind(self) -> str | None:
        """Best-effort class of `fail_reason`: timeout, banned, cancelled, unavailable, invalid, other."""
        if self.status is not TaskStatus.FAILURE and not self.fail_reason:
            return None
        reason = self.fail_reason or ""
        for kind, needles in _FAIL_KINDS:
            if any(needle in reason for needle in needles):
                return kind
        return "other"


@attrs.frozen
class SubmitResult:
    """The `{code, description, result, properties}` envelope every submit answers with."""

    code: int
    description: str = ""
    result: str | list[str] | None = None
    """A task id for job submits; a list of URLs or a seed for the endpoints that return those."""
    properties: Mapping[str, Any] = attrs.field(factory=dict)
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def queue_position(self) -> int | None:
        """Jobs ahead of this one when the server queued it (code 22), else None."""
        value = self.properties.get("numberOfQueues")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


@attrs.define
class ClientStats:
    """Counters of what one client did, for dashboards and summaries."""

    requests: int = 0
    """HTTP requests sent (each retry counts)."""
    retries: int = 0
    """Requests resent under a retry policy."""
    reconciles: int = 0
    """Submits whose outcome was unknown and were looked up by their state tag."""
    reconciled: int = 0
    """Of those, how many were found (adopted) instead of raising SubmitUncertainError."""
    callbacks: int = 0
    """notifyHook callbacks accepted for tasks this client waits for."""
    resolved_by_callback: int = 0
    """Waits whose final status arrived through a callback (confirmed by one fetch)."""
    resolved_by_poll: int = 0
    """Waits whose final status arrived through polling or a fetch."""


_RANK: Final = {
    TaskStatus.UNKNOWN: 0,
    TaskStatus.NOT_START: 1,
    TaskStatus.MODAL: 1,  # an action may go MODAL -> NOT_START once its modal is submitted
    TaskStatus.SUBMITTED: 2,
    TaskStatus.IN_PROGRESS: 3,
    TaskStatus.SUCCESS: 4,
    TaskStatus.FAILURE: 4,
    TaskStatus.CANCEL: 4,
}


def is_older(new: TaskInfo, last: TaskInfo) -> bool:
    """True when `new` is behind `last` (a lower status, or the same status at lower progress):
    callbacks arrive out of order, and a late IN_PROGRESS must not undo a SUCCESS."""
    new_rank, last_rank = _RANK.get(new.status, 1), _RANK.get(last.status, 1)
    if new_rank != last_rank:
        return new_rank < last_rank
    return (new.progress or 0) < (last.progress or 0)


def snapshot_key(info: TaskInfo) -> tuple[object, ...]:
    """What makes two snapshots of one task different enough to report again."""
    return (info.status, info.progress_text, info.image_url, info.fail_reason)
