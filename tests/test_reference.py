"""docs/reference.md names every public name, and every public method of Client and Task."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mjasync
import mjasync.testing

TEXT = (Path(__file__).resolve().parent.parent / "docs" / "reference.md").read_text(encoding="utf-8")
FENCED = re.compile(r"^```\w*\n(.*?)^```", re.S | re.M)
CODE = " ".join([*FENCED.findall(TEXT), *re.findall(r"`([^`]+)`", FENCED.sub("", TEXT))])


def public_members(cls: type) -> list[str]:
    return [name for name in vars(cls) if not name.startswith("_")]


NAMES = [
    *mjasync.__all__,
    *mjasync.testing.__all__,
    *(f"{cls.__name__}.{name}" for cls in (mjasync.Client, mjasync.Task) for name in public_members(cls)),
]


@pytest.mark.parametrize("name", NAMES)
def test_reference_names_it(name: str) -> None:
    word = name.rsplit(".", 1)[-1]
    assert re.search(rf"\b{re.escape(word)}\b", CODE), f"docs/reference.md does not mention `{name}`"
