"""`commands.Bot` and `Context` stand-ins: `Bot.run()` plays one `!imagine` command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from discord import File, Intents

Command = Callable[..., Awaitable[None]]
PLAYED_PROMPT = "a red fox in snow"
RUNS: list[Context] = []
"""Every Context the stub bot played, for the test to inspect."""


class Message:
    def __init__(self, content: str) -> None:
        self.edits = [content]

    async def edit(self, *, content: str) -> None:
        self.edits.append(content)


class Context:
    def __init__(self) -> None:
        self.replies: list[Message] = []
        self.files: list[File] = []

    async def reply(self, content: str) -> Message:
        message = Message(content)
        self.replies.append(message)
        return message

    async def send(self, content: str = "", *, file: File | None = None) -> None:
        if file is not None:
            self.files.append(file)


class Bot:
    def __init__(self, command_prefix: str, intents: Intents) -> None:
        self.commands: dict[str, Command] = {}

    def command(self) -> Callable[[Command], Command]:
        def register(function: Command) -> Command:
            self.commands[function.__name__] = function
            return function

        return register

    async def close(self) -> None:
        pass

    def run(self, token: str, **_: Any) -> None:
        async def play() -> None:
            context = Context()
            RUNS.append(context)
            try:
                await self.commands["imagine"](context, prompt=PLAYED_PROMPT)
            finally:
                await self.close()

        asyncio.run(play())
