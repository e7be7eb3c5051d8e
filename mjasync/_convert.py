"""The one cattrs converter between the camelCase wire format and the snake_case models."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._models import Button, SubmitResult, TaskAction, TaskInfo, TaskStatus

__all__ = ["join_state", "split_state", "structure", "unstructure"]

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

STATE_TAG: Final = re.compile(r"mja-[0-9a-f]{32}\Z")
_TAG_LEN: Final = 36
_SEP: Final = ":"

# Wire fields that do not map one to one onto a model field.
_EXTRA: Final = "__mjasync_extra__"
_STATE: Final = "__mjasync_state__"
_TAG: Final = "__mjasync_state_tag__"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def split_state(wire: str | None) -> tuple[str | None, str | None]:
    """Split a wire `state` into (caller's state, SDK tag); the tag is always the last 36 chars."""
    if not wire:
        return None, None
    if STATE_TAG.search(wire) is None:
        return wire, None
    tag = wire[-_TAG_LEN:]
    rest = wire[:-_TAG_LEN]
    if not rest:
        return None, tag
    if rest.endswith(_SEP):
        return rest[: -len(_SEP)], tag
    return wire, None


def join_state(state: str | None, tag: str) -> str:
    """The wire `state` carrying both the caller's state and the SDK's tag (inverse of split_state)."""
    return f"{state}{_SEP}{tag}" if state else tag


def _str(value: Any, _: type) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _id(value: Any, _: type) -> str:
    text = _str(value, str)
    if not text:
        raise ValueError("empty id")
    return text


# The two hooks below run ~17 times per task decoded: plain strings take the first branch.
def _text(value: Any, _: type) -> str:
    if type(value) is str:
        return value
    return "" if value is None else _str(value, str)


def _optional_str(value: Any, _: type) -> str | None:
    if type(value) is str:
        return value or None
    return None if value is None else _str(value, str) or None


def _epoch_ms(value: Any, _: type) -> datetime | None:
    if value is None or value == 0 or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected epoch milliseconds, got {type(value).__name__}")
    return datetime.fromtimestamp(float(value) / 1000, tz=UTC)


def _to_epoch_ms(value: datetime | None) -> int | None:
    return None if value is None else round(value.timestamp() * 1000)


def _mapping(value: Any, _: type) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return int(value)


def _result(value: Any, _: type) -> str | list[str] | None:
    if isinstance(value, list):
        return [_str(item, str) for item in value]
    return _optional_str(value, str)


def _buttons(value: Any, _: type) -> tuple[Button, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise TypeError(f"expected a list of buttons, got {type(value).__name__}")
    return tuple(converter.structure(item, Button) for item in value)


def _enum(cls: type[E]) -> Callable[[Any, type], E]:
    members = cls._value2member_map_

    def hook(value: Any, _: type) -> E:
        member = members.get(value) if type(value) is str else None
        return member if member is not None else cls(_text(value, str))  # type: ignore[return-value]

    return hook


def _register_model(
    converter: cattrs.Converter,
    cls: type[Any],
    renames: Mapping[str, str] | None = None,
    consumed: frozenset[str] = frozenset(),
    prepare: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Register both directions for a model: camelCase names, unnamed wire fields kept in `extra`."""
    names = {
        field.name: (renames or {}).get(field.name, _camel(field.name))
        for field in attrs.fields(cls)
    }
    names["extra"] = _EXTRA
    known = set(names.values()) | consumed
    structure_overrides: dict[str, Any] = {
        name: override(rename=wire, struct_hook=_id if name in ("id", "custom_id") else None)
        for name, wire in names.items()
    }
    unstructure_overrides: dict[str, Any] = {name: override(rename=wire) for name, wire in names.items()}
    build = make_dict_structure_fn(cls, converter, **structure_overrides)
    flatten = make_dict_unstructure_fn(cls, converter, **unstructure_overrides)

    def structure_hook(value: Any, _: type) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        wire = dict(value)
        wire[_EXTRA] = {k: v for k, v in value.items() if k not in known}
        if prepare is not None:
            prepare(wire)
        return build(wire, cls)

    def unstructure_hook(model: Any) -> dict[str, Any]:
        wire = flatten(model)
        if _TAG in wire:
            tag = wire.pop(_TAG)
            state = wire.pop(_STATE)
            wire["state"] = state if tag is None else join_state(state, tag)
        return {**wire.pop(_EXTRA), **wire}

    converter.register_structure_hook(cls, structure_hook)
    converter.register_unstructure_hook(cls, unstructure_hook)


def _prepare_task(wire: dict[str, Any]) -> None:
    state = wire.get("state")
    wire[_STATE], wire[_TAG] = split_state(state if isinstance(state, str) else None)


def _is(expected: Any) -> Callable[[Any], bool]:
    return lambda tp: bool(tp == expected)


def _make_converter() -> cattrs.Converter:
    """The converter with every hook registered: scalars, enums, then the models."""
    made = cattrs.Converter()
    made.register_structure_hook(str, _text)
    made.register_structure_hook(int, _int)
    made.register_structure_hook(str | None, _optional_str)
    made.register_structure_hook(datetime | None, _epoch_ms)
    made.register_unstructure_hook(datetime, _to_epoch_ms)
    made.register_structure_hook(TaskStatus, _enum(TaskStatus))
    made.register_structure_hook(TaskAction, _enum(TaskAction))
    made.register_unstructure_hook(enum.Enum, lambda member: member.value)
    made.register_structure_hook_func(_is(Mapping[str, Any]), _mapping)
    made.register_structure_hook_func(_is(tuple[Button, ...]), _buttons)
    made.register_structure_hook_func(_is(str | list[str] | None), _result)
    _register_model(made, Button)
    _register_model(made, SubmitResult)
    _register_model(
        made,
        TaskInfo,
        renames={"progress_text": "progress", "state": _STATE, "state_tag": _TAG},
        consumed=frozenset({"state"}),
        prepare=_prepare_task,
    )
    return made


converter: Final = _make_converter()


def structure(value: Any, cls: type[T]) -> T:
    """Build a model from decoded JSON; raises cattrs errors that callers turn into ResponseDecodeError."""
    return converter.structure(value, cls)


def unstructure(model: Any) -> Any:
    """The wire (camelCase) form of a model."""
    return converter.unstructure(model)
