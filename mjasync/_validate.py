"""Input checks, run before any request: each returns what it accepts or raises InvalidRequestError.

Callers import the module as `check` (`check.prompt(prompt)`). Every choice tuple is built from
its `Literal`, so a choice is spelt once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

from ._exceptions import InvalidRequestError
from ._images import data_url
from ._lookup import ReconcileStrategy
from ._models import Button, CustomId, Dimensions, PanDirection
from ._transport import AuthStyle

__all__ = [
    "AUTH_STYLES",
    "BOT_TYPES",
    "DIMENSIONS",
    "MAX_STATE_LENGTH",
    "MOTIONS",
    "PAN_DIRECTIONS",
    "RECONCILE_STRATEGIES",
    "UPSCALE_STYLES",
    "BotType",
    "UpscaleStyle",
    "VideoMotion",
    "at_least",
    "batch",
    "blend_images",
    "bot_type",
    "choice",
    "custom_id",
    "extra_body",
    "flag",
    "grid_index",
    "http_url",
    "image_or_url",
    "images",
    "json_ready",
    "motion",
    "notify_hook",
    "prompt",
    "sequence",
    "state",
    "state_tag",
    "submit_body",
    "task_id",
    "text",
    "timeout",
    "upload_images",
    "url_or_data_url",
    "video_batch_size",
    "video_index",
]

BotType = Literal["MID_JOURNEY", "NIJI_JOURNEY"]
VideoMotion = Literal["low", "high"]
UpscaleStyle = Literal["subtle", "creative"]

BOT_TYPES: Final[tuple[str, ...]] = get_args(BotType)
MOTIONS: Final[tuple[str, ...]] = get_args(VideoMotion)
UPSCALE_STYLES: Final[tuple[str, ...]] = get_args(UpscaleStyle)
DIMENSIONS: Final[tuple[str, ...]] = get_args(Dimensions)
PAN_DIRECTIONS: Final[tuple[str, ...]] = get_args(PanDirection)
AUTH_STYLES: Final[tuple[str, ...]] = get_args(AuthStyle)
RECONCILE_STRATEGIES: Final[tuple[str, ...]] = get_args(ReconcileStrategy)
VIDEO_BATCH_SIZES: Final = (1, 2, 4)
MAX_STATE_LENGTH: Final = 255 - 37
"""Characters of a caller's `state`: the server keeps 255, the SDK's tag takes 37."""
MAX_NOTIFY_HOOK_LENGTH: Final = 2000


def timeout(value: float | None, name: str = "timeout", *, zero: bool = False) -> None:
    """Raise unless `value` is None or a number of seconds above 0 (at or above 0 with `zero`:
    a wait may just look; a request timeout of 0 would mean none at all)."""
    if value is None:
        return
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        raise InvalidRequestError(
            f"{name} must be a finite number of seconds {bound}, or None for no limit; got {value!r}"
        )


def choice(value: str, choices: Sequence[str], name: str) -> str:
    if value not in choices:
        raise InvalidRequestError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def bot_type(value: str) -> str:
    return choice(value, BOT_TYPES, "bot_type")


def motion(value: str) -> str:
    return choice(value, MOTIONS, "motion")


def at_least(value: int, low: int, name: str) -> int:
    """An int (not a bool) of at least `low`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise InvalidRequestError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def flag(value: bool, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequestError(f"{name} must be True or False, got {value!r}")
    return value


def task_id(value: str | int) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"a task id must be a non-empty string, got {value!r}")
    return value


def custom_id(value: str | Button | CustomId) -> str:
    """A button's customId, given as the string, the Button, or its parsed CustomId."""
    if isinstance(value, Button):
        value = value.custom_id
    raw = str(value) if isinstance(value, CustomId) else value
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidRequestError(f"custom_id must be a non-empty string, got {raw!r}")
    return raw


def _encodable(value: str, name: str) -> str:
    """`value` once it is known to encode as UTF-8 (a lone surrogate does not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequestError(f"{name} holds a lone surrogate, which UTF-8 cannot encode") from None
    return value


def prompt(value: str, name: str = "prompt") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"{name} must be a non-empty string")
    return _encodable(value, name)


def text(value: str, name: str) -> str:
    """Any string, empty included."""
    if not isinstance(value, str):
        raise InvalidRequestError(f"{name} must be a string, got {type(value).__name__}")
    return _encodable(value, name)


def submit_body(body: dict[str, Any], hook: str | None, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """A submit's body with its checked hook (`notifyHook`) and `extra_body` added."""
    fields = extra_body(extra, body) if extra is not None else {}
    checked = notify_hook(hook)
    if checked is not None:
        body["notifyHook"] = checked
    body.update(fields)
    return body


def batch(prompts: Iterable[str], max_in_flight: int, wait: float | None, bot: str) -> list[str]:
    """imagine_many's prompts, checked with its bound, deadline and bot type."""
    items = [prompt(p, f"prompts[{i}]") for i, p in enumerate(sequence(prompts, "prompts"))]
    at_least(max_in_flight, 1, "max_in_flight")
    timeout(wait)
    bot_type(bot)
    return items


def state_tag(value: str) -> str:
    """A tag from SubmitUncertainError or a log line: a non-empty string."""
    if not text(value, "state_tag"):
        raise InvalidRequestError("state_tag must not be empty")
    return value


def grid_index(index: int) -> int:
    if not isinstance(index, int) or isinstance(index, bool) or not 1 <= index <= 4:
        raise InvalidRequestError(f"index must be 1, 2, 3 or 4 (an image of the grid), got {index!r}")
    return index


def video_index(index: int) -> int:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= 3:
        raise InvalidRequestError(f"index must be 0, 1, 2 or 3 (a video of the job), got {index!r}")
    return index


def video_batch_size(value: int) -> int:
    if value not in VIDEO_BATCH_SIZES or isinstance(value, bool):
        raise InvalidRequestError(f"batch_size must be 1, 2 or 4, got {value!r}")
    return value


def state(value: str | None) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_STATE_LENGTH):
        raise InvalidRequestError(f"state must be a string of at most {MAX_STATE_LENGTH} characters")
    return value if value is None else _encodable(value, "state")


def notify_hook(value: str | None) -> str | None:
    """An http(s) URL with a host, printable ASCII only (no space, CR or LF the server would
    put into its own request line or headers)."""
    if value is None:
        return None
    if not (
        isinstance(value, str)
        and len(value) <= MAX_NOTIFY_HOOK_LENGTH
        and value.isascii()
        and value.isprintable()
        and " " not in value
    ):
        raise InvalidRequestError(
            "notify_hook must be an http(s) URL of at most 2000 printable ASCII characters without spaces"
        )
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        host = None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidRequestError("notify_hook must be an http(s) URL with a host")
    return value


def json_ready(extra_body: Mapping[str, Any]) -> Mapping[str, Any]:
    """`extra_body` itself, once it is known to encode as JSON (else InvalidRequestError, before
    any request, rather than a TypeError from inside the transport)."""
    try:
        json.dumps(extra_body)
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"extra_body must be JSON-serialisable: {exc}") from None
    return extra_body


RESERVED_FIELDS: Final = frozenset({"state", "notifyHook"})
"""Fields extra_body never sets: the SDK tags `state` and picks the hook (`state=`, `notify_hook=`)."""


def extra_body(value: Mapping[str, Any], taken: Iterable[str] = ()) -> Mapping[str, Any]:
    """A submit's `extra_body`: a JSON mapping that overrides none of the fields the SDK sets
    (`taken`, the body built so far, plus `state` and `notifyHook`)."""
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise InvalidRequestError("extra_body must be a mapping with string keys")
    clash = sorted(RESERVED_FIELDS.union(taken).intersection(value))
    if clash:
        raise InvalidRequestError(
            f"extra_body must not override {', '.join(clash)}: pass the SDK's own argument for it"
        )
    for key in value:
        _encodable(key, "an extra_body key")
    return json_ready(value)


def sequence(items: Iterable[Any], name: str) -> list[Any]:
    if isinstance(items, str | bytes):
        raise InvalidRequestError(f"{name} must be a list, not a single string")
    try:
        return list(items)
    except TypeError:
        raise InvalidRequestError(f"{name} must be a list, got {type(items).__name__}") from None


def _is_http_url(image: str | bytes) -> bool:
    return isinstance(image, str) and image.startswith(("http://", "https://"))


def http_url(value: str) -> str:
    if not _is_http_url(value):
        raise InvalidRequestError("an image URL must start with http:// or https://")
    return value


def url_or_data_url(image: str | bytes, name: str) -> str:
    """An http(s) URL as it is, any other image as a validated data URL."""
    return image if isinstance(image, str) and _is_http_url(image) else data_url(image, name)


def image_or_url(image: str | bytes, side: str) -> dict[str, str]:
    """`{side}Url` for an http(s) URL, else `{side}Base64` with a validated data URL."""
    return {f"{side}Url" if _is_http_url(image) else f"{side}Base64": url_or_data_url(image, side)}


def images(values: Sequence[str | bytes], name: str) -> list[str]:
    """Each image as a validated data URL."""
    return [data_url(image, f"{name}[{i}]") for i, image in enumerate(sequence(values, name))]


def blend_images(values: Sequence[str | bytes]) -> list[str]:
    encoded = images(values, "images")
    if not 2 <= len(encoded) <= 5:
        raise InvalidRequestError(f"blend takes 2 to 5 images, got {len(encoded)}")
    return encoded


def upload_images(values: Sequence[str | bytes]) -> list[str]:
    encoded = images(values, "images")
    if not encoded:
        raise InvalidRequestError("upload_images needs at least one image")
    return encoded


MAX_META_BYTES: Final = 2048
"""The largest `meta=` (as compact UTF-8 JSON): it is kept with every pending job."""
MAX_NAME_LENGTH: Final = 255


def meta(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-serialisable mapping of at most MAX_META_BYTES, as a plain copy."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise InvalidRequestError("meta must be a mapping with string keys")
    try:
        encoded = json.dumps(dict(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"meta must be JSON-serialisable: {exc}") from None
    if len(encoded.encode()) > MAX_META_BYTES:
        raise InvalidRequestError(f"meta is {len(encoded.encode())} bytes as JSON; at most {MAX_META_BYTES}")
    copy: dict[str, Any] = json.loads(encoded)
    return copy


def name(value: str | None, what: str) -> str | None:
    """None, or 1..255 printable characters (an idempotency key, a replica name)."""
    if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= MAX_NAME_LENGTH
                              or not value.isprintable()):
        raise InvalidRequestError(f"{what} must be 1-{MAX_NAME_LENGTH} printable characters")
    return value
