"""Reading request bodies the way the servers do: JSON, text fields, task ids, images, words."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["id_of", "is_data_url", "is_url", "read_json", "text_of", "word_in"]

_DATA_URL: Final = re.compile(r"data:[\w.+/-]+;base64,(.+)", re.DOTALL)


def read_json(raw: bytes) -> Any | None:
    """The JSON in a request body; None when it is empty or not JSON."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def text_of(body: Mapping[str, Any], key: str) -> str:
    """`body[key]` when it is a string, else ``""``."""
    value = body.get(key)
    return value if isinstance(value, str) else ""


def id_of(value: Any) -> str:
    """A task id sent as a string or a number, as text; ``""`` for anything else."""
    return str(value) if isinstance(value, (str, int)) else ""


def is_data_url(value: Any) -> bool:
    """True for a ``data:...;base64,`` URL with a non-empty, valid base64 payload."""
    match = _DATA_URL.fullmatch(value) if isinstance(value, str) else None
    try:
        return match is not None and bool(base64.b64decode(match[1], validate=True))
    except ValueError:
        return False


def is_url(value: Any) -> bool:
    """True for an http(s) URL."""
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def word_in(prompt: str, words: tuple[str, ...]) -> str | None:
    """The first of `words` found in `prompt`, ignoring case."""
    return next((w for w in words if w.lower() in prompt.lower()), None)
