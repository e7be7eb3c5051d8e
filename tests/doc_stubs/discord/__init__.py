"""A stand-in for the part of discord.py the docs use."""

from __future__ import annotations

import io


class Intents:
    @classmethod
    def default(cls) -> Intents:
        return cls()


class File:
    def __init__(self, fp: io.BytesIO, filename: str) -> None:
        self.data = fp.read()
        self.filename = filename
