"""Frozen snapshots of what the server returns, and the open enums they use."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

import attrs

from ._logging import scrub

__all__ = [
    "Button",
    "CustomId",
    "Dimensions",
    "ModalKind",
    "PanDirection",
    "SubmitResult",
    "TaskAction",
    "TaskInfo",
    "TaskStatus",
    "is_older",
    "parse_custom_id",
    "snapshot_key",
]

_PERCENT: Final = re.compile(r"^(\d{1,3})%$")
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_WORD_BOUNDARY: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

Dimensions = Literal["PORTRAIT", "SQUARE", "LANDSCAPE"]
"""Blend output shape: PORTRAIT 2:3, SQUARE 1:1, LANDSCAPE 3:2."""
PanDirection = Literal["left", "right", "up", "down"]
ModalKind = Literal["remix", "vary_region", "custom_zoom"]
"""What a MODAL task waits for: a prompt (remix), a mask and a prompt (Vary Region), or a prompt
with `--zoom` (Custom Zoom)."""
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
class CustomId:
    """A button's customId taken apart, for hints only: the raw string is what gets sent.

    `MJ::JOB::upsample::2::<hash>` is family `JOB`, kind `upsample`, index 2. A string that does
    not follow the `MJ::<family>::...` grammar keeps only `raw`.
    """

    raw: str
    family: str | None = None
    """The second segment as sent: `JOB`, `Inpaint`, `Outpaint`, `CustomZoom`, ..."""
    kind: str | None = None
    """snake_case operation: `upsample`, `variation`, `low_variation`, `reroll`, `pan_left`,
    `upsample_v6_2x_subtle`, `inpaint`, `outpaint`, `custom_zoom`, ..."""
    index: int | None = None
    """The image the button acts on (1-4), 0 for reroll, None when absent."""
    hash: str | None = None
    """The job UUID the button belongs to, when the id carries one."""
    value: int | None = None
    """A number besides the index: Outpaint's 50 (Zoom Out 2x) or 75 (Zoom Out 1.5x)."""

    def __str__(self) -> str:
        return self.raw


def _snake(segment: str) -> str:
    return _WORD_BOUNDARY.sub("_", segment).lower()


def _small_int(segment: str) -> int | None:
    return int(segment) if segment.isascii() and segment.isdigit() and len(segment) <= 9 else None


def parse_custom_id(raw: str) -> CustomId:
    """Take a customId apart (see `CustomId`); never raises, unknown shapes keep only `raw`."""
    parts = raw.split("::") if isinstance(raw, str) else []
    if len(parts) < 2 or parts[0] != "MJ" or not parts[1]:
        return CustomId(raw=raw)
    family, rest = parts[1], parts[2:]
    kind = family
    if family.upper() == "JOB" and rest and rest[0]:
        kind, rest = rest[0], rest[1:]
    at = next((i for i, part in enumerate(rest) if _UUID.fullmatch(part)), len(rest))
    numbers = [n for n in map(_small_int, rest[:at]) if n is not None]
    after = [n for n in map(_small_int, rest[at + 1 :]) if n is not None]
    return CustomId(
        raw=raw,
        family=family,
        kind=_snake(kind),
        index=numbers[-1] if numbers else (after[0] if after else None),
        hash=rest[at] if at < len(rest) else None,
        value=numbers[0] if len(numbers) > 1 else None,
    )


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

    @property
    def parsed(self) -> CustomId:
        """`custom_id` taken apart (family, kind, index, hash)."""
        return parse_custom_id(self.custom_id)


def _scrubbed(value: object) -> str:
    """A repr with secrets masked: `properties.notifyHook` carries the callback token."""
    return scrub(repr(value))


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
    properties: Mapping[str, Any] = attrs.field(factory=dict, repr=_scrubbed)
    extra: Mapping[str, Any] = attrs.field(factory=dict, repr=_scrubbed)
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

    @property
    def final_prompt(self) -> str | None:
        """The prompt as Midjourney echoed it; describe puts its four prompts here, shorten its analysis."""
        value = self.properties.get("finalPrompt")
        return value if isinstance(value, str) and value else None

    @property
    def image_urls(self) -> tuple[str, ...]:
        """The single-image URLs some servers add (`imageUrls`, longer-lived than `image_url`)."""
        items = self.extra.get("imageUrls")
        if not isinstance(items, list):
            return ()
        urls = (item.get("url") if isinstance(item, dict) else item for item in items)
        return tuple(url for url in urls if isinstance(url, str) and url)

    @property
    def video_url(self) -> str | None:
        """The video of a video job (`videoUrl`, else the first of `videoUrls`), where the server sends it."""
        value = self.extra.get("videoUrl")
        if isinstance(value, str) and value:
            return value
        items = self.extra.get("videoUrls")
        first = items[0] if isinstance(items, list) and items else None
        url = first.get("url") if isinstance(first, dict) else first
        return url if isinstance(url, str) and url else None

    def find_button(self, kind: str, index: int | None = None) -> Button | None:
        """The first button whose customId has this `kind` (and `index`, when given); pure lookup."""
        for button in self.buttons:
            parsed = button.parsed
            if parsed.kind == kind and (index is None or parsed.index == index):
                return button
        return None


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
