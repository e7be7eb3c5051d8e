"""Follow-up actions: which button a helper means, what to send for it, and the fresh-parent retry.

Everything here but `send_press` and `retry_fresh_parent` is pure: helpers resolve a `customId` from
the parent's own buttons (never a guessed hash) and refuse before any request when the button is absent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal, TypeVar

import attrs

from . import _validate as check
from ._endpoints import ACTION, CHANGE
from ._exceptions import InvalidRequestError, ProxyResultError, UnsupportedEndpointError
from ._models import (
    Button,
    CustomId,
    ModalKind,
    PanDirection,
    TaskAction,
    TaskInfo,
    TaskStatus,
    parse_custom_id,
)
from ._retry import retrying, uniform_wait
from ._stats import ClientStats

__all__ = [
    "Press",
    "Want",
    "change_for",
    "modal_kind",
    "press_for",
    "resolve",
    "retry_fresh_parent",
    "send_press",
    "want_pan",
    "want_reroll",
    "want_upscale",
    "want_upscale_hd",
    "want_vary",
    "want_vary_region",
    "want_zoom",
]

T = TypeVar("T")
ChangeAction = Literal["UPSCALE", "VARIATION", "REROLL"]

_ZOOM_OUT: Final = {2: 50, 1.5: 75}
"""Zoom Out factor -> the percent Outpaint customIds carry."""
_GRID_ACTIONS: Final = frozenset(
    {TaskAction.IMAGINE, TaskAction.VARIATION, TaskAction.REROLL, TaskAction.BLEND}
)
"""Results that are 2x2 grids: on the reference server (no buttons) they take U/V/R by change."""
_CHANGE: Final[dict[str, ChangeAction]] = {
    "upsample": "UPSCALE",
    "variation": "VARIATION",
    "reroll": "REROLL",
}

FRESH_PARENT_RETRIES: Final = 3
_PARENT_NOT_READY: Final = (
    "关联任务不存在或已失效",
    "关联任务状态错误",
    "task_not_found",
    "task_no_found",
    "task_status_not_success",
)


@attrs.frozen
class Want:
    """A helper's request: the button kinds it accepts (first match wins) and, for the reference
    server's change endpoint, the equivalent (action, index)."""

    label: str
    choices: tuple[tuple[str, int | None, int | None], ...]
    """(kind, index or None for any, value or None for any), in order of preference."""
    change: tuple[ChangeAction, int] | None = None


@attrs.frozen
class Press:
    """What to send: a button's customId (`/submit/action`), else a change (`/submit/change`)."""

    custom_id: str | None
    change: tuple[ChangeAction, int] | None
    pressed: CustomId | None = None


def want_upscale(index: int) -> Want:
    index = check.grid_index(index)
    return Want(f"U{index}", (("upsample", index, None),), ("UPSCALE", index))


def want_vary(index: int | None, strong: bool) -> Want:
    """V1-V4 on a grid; Vary (Subtle) or, with `strong`, Vary (Strong) on an upscaled image."""
    if index is not None:
        index = check.grid_index(index)
    single = ("high_variation" if check.flag(strong, "strong") else "low_variation", None, None)
    if strong:
        if index not in (None, 1):
            raise InvalidRequestError(
                "strong=True means Vary (Strong) of an upscaled image; a grid's V1-V4 take no strength"
            )
        return Want("Vary (Strong)", (single,))
    if index is None:
        return Want("Vary (Subtle)", (single,))
    grid = ("variation", index, None)
    return Want(f"V{index}", (grid, single) if index == 1 else (grid,), ("VARIATION", index))


def want_reroll() -> Want:
    # Relays require an index for REROLL on /submit/change: 1 works everywhere.
    return Want("reroll (🔄)", (("reroll", None, None),), ("REROLL", 1))


def want_zoom(factor: float | str) -> Want:
    """Zoom Out 2x / 1.5x, or Custom Zoom (a MODAL that takes a prompt with `--zoom`)."""
    if factor == "custom":
        return Want("Custom Zoom", (("custom_zoom", None, None),))
    number = isinstance(factor, int | float) and not isinstance(factor, bool)
    percent = _ZOOM_OUT.get(float(factor)) if number else None
    if percent is None:
        raise InvalidRequestError(f"zoom factor must be 2, 1.5 or 'custom', got {factor!r}")
    return Want(f"Zoom Out {factor:g}x", (("outpaint", None, percent),))


def want_pan(direction: PanDirection) -> Want:
    check.choice(direction, check.PAN_DIRECTIONS, "direction")
    return Want(f"pan {direction}", ((f"pan_{direction}", None, None),))


def want_vary_region() -> Want:
    return Want("Vary (Region)", (("inpaint", None, None),))


def want_upscale_hd(style: check.UpscaleStyle) -> Want:
    check.choice(style, check.UPSCALE_STYLES, "style")
    kinds = (f"upsample_v7_2x_{style}", f"upsample_v6r1_2x_{style}", f"upsample_v6_2x_{style}")
    return Want(f"Upscale ({style.title()})", tuple((kind, None, None) for kind in kinds))


def resolve(want: Want, parent: TaskInfo) -> Press:
    """The button of `parent` that `want` means; InvalidRequestError when it has none."""
    if parent.status is not TaskStatus.SUCCESS:
        raise InvalidRequestError(
            f"task {parent.id} is {parent.status.value or 'not started'}: its buttons appear once it succeeds"
        )
    for kind, index, value in want.choices:
        for button in parent.buttons:
            parsed = button.parsed
            if parsed.kind == kind and index in (None, parsed.index) and value in (None, parsed.value):
                return Press(button.custom_id, change_for(parsed), parsed)
    if not parent.buttons and want.change is not None and parent.action in _GRID_ACTIONS:
        # The reference server sends no buttons; its grids take U/V/R through /submit/change.
        return Press(None, want.change)
    if not parent.buttons:
        raise InvalidRequestError(
            f"task {parent.id} has no {want.label} button: it has no buttons at all (the reference "
            "server shows none; there only a grid's U1-U4, V1-V4 and reroll work)"
        )
    offered = ", ".join(b.label or b.emoji or b.custom_id for b in parent.buttons)
    raise InvalidRequestError(f"task {parent.id} has no {want.label} button (it offers: {offered})")


def press_for(custom_id: str | Button | CustomId) -> Press:
    """What `Client.action` sends for a button given by its customId (string, Button or CustomId)."""
    raw = check.custom_id(custom_id)
    parsed = parse_custom_id(raw)
    return Press(raw, change_for(parsed), parsed)


def change_for(custom_id: CustomId) -> tuple[ChangeAction, int] | None:
    """The `/submit/change` (action, index) that does what a U/V/reroll button does, else None."""
    action = _CHANGE.get(custom_id.kind or "")
    if action is None:
        return None
    if action == "REROLL":
        return action, 1
    index = custom_id.index
    return (action, index) if index is not None and 1 <= index <= 4 else None


def modal_kind(info: TaskInfo, pressed: CustomId | None = None) -> ModalKind:
    """What a MODAL task needs, from the button pressed when known, else from the task's fields."""
    ids = [pressed] if pressed is not None else []
    for key in ("customId", "custom_id", "modalCustomId"):
        value = info.properties.get(key, info.extra.get(key))
        if isinstance(value, str):
            ids.append(parse_custom_id(value))
    kinds = {custom_id.kind for custom_id in ids}
    if "inpaint" in kinds or info.action is TaskAction.INPAINT:
        return "vary_region"
    if "custom_zoom" in kinds or info.action is TaskAction.CUSTOM_ZOOM:
        return "custom_zoom"
    return "remix"


def _parent_not_ready(exc: BaseException) -> bool:
    """Code 3/4 saying the parent is missing or not finished: right after SUCCESS, a save race."""
    return (
        isinstance(exc, ProxyResultError)
        and exc.code in (3, 4)
        and any(text in exc.description for text in _PARENT_NOT_READY)
    )


async def retry_fresh_parent(send: Callable[[], Awaitable[T]], *, backoff: float, stats: ClientStats) -> T:
    """Run an action submit, resending up to 3 times (backoff..4*backoff s apart) while the server
    says its parent is missing or not ready: nothing was created, and a moment later it works."""
    wait = uniform_wait(backoff, backoff * 4)
    controller = retrying(_parent_not_ready, wait=wait, attempts=FRESH_PARENT_RETRIES + 1, stats=stats)
    return await controller(send)


async def send_press(
    submit: Callable[[str, dict[str, Any]], Awaitable[T]], parent_id: str, press: Press, missing: set[str],
    *, backoff: float, stats: ClientStats,
) -> T:
    """Send one follow-up through `submit(path, body)`: `/submit/action`, or `/submit/change` where
    the server lacks it (`missing`, the caller's set of such endpoints, remembers that)."""

    async def send() -> T:
        if press.custom_id is not None and (press.change is None or ACTION not in missing):
            try:
                return await submit(ACTION, {"taskId": parent_id, "customId": press.custom_id})
            except UnsupportedEndpointError:
                if press.change is None:
                    raise
                missing.add(ACTION)
        assert press.change is not None, "a Press carries a customId, a change, or both"
        action, index = press.change
        return await submit(CHANGE, {"taskId": parent_id, "action": action, "index": index})

    return await retry_fresh_parent(send, backoff=backoff, stats=stats)
