"""The durable-jobs guide's Telegram bot, run as a real process against FakeProxy (relay) and a
fake Telegram Bot API server on loopback: SIGKILLed after submitting, restarted, fed redelivered
updates. Each message must cost exactly one job and get its picture."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import BodyPartReader, web

from mjasync.testing import FakeProxy
from tests.conftest import SETTLE_TIMEOUT

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "durable-jobs.md"
PROGRAM = "# file: tg_bot.py\n"
TOKEN = "123456:TEST-token_for-the-fake"
DEADLINE = 3 * SETTLE_TIMEOUT
"""Seconds any one state may take: a Python process importing aiogram on a busy machine is slow."""
PNG = b"\x89PNG\r\n\x1a\n"


def bot_program() -> str:
    """The guide's bot block, as written."""
    blocks = re.findall(r"^```python\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), re.S | re.M)
    (program,) = [block for block in blocks if block.startswith(PROGRAM)]
    return str(program)


@dataclass
class Reply:
    method: str
    chat_id: int
    reply_to: int | None
    photo: bytes = b""
    text: str = ""


@dataclass
class FakeTelegram:
    """The Bot API methods the bot calls, with getUpdates' real semantics: the earliest
    unconfirmed updates are served, and a request's `offset` confirms (drops) every update with a
    lower id, so updates a bot never confirmed are served again after a restart."""

    pending: list[dict[str, Any]] = field(default_factory=list)
    served: Counter[int] = field(default_factory=Counter)
    """Update id -> how many getUpdates answers carried it."""
    confirmed_below: int = 0
    replies: list[Reply] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    unknown: list[str] = field(default_factory=list)
    parked: list[str] = field(default_factory=list)
    """Methods of the requests held by an outage (see `cut`)."""
    replays: dict[int, int] = field(default_factory=dict)
    """Update id -> how many confirmations to lose (the update is served again)."""
    cut_after_delivery: bool = False
    latency: float = 0.05
    """Seconds each request takes to arrive, as on a real network (api.telegram.org is far)."""
    _cut: frozenset[str] | None = None
    _restored: asyncio.Future[bool] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: bool = False
    _next_id: int = 1000

    def push(self, update: dict[str, Any], *, replays: int = 0) -> None:
        self.pending.append(update)
        self.replays[update["update_id"]] = replays
        self._arrived.set()

    def cut(self, *methods: str) -> None:
        """From now on hold these methods' requests (all, when none given) as if the network
        lost them; `restore()` decides whether they (and those held already) arrive."""
        self._cut = frozenset(methods) or None
        if self._restored is None:
            self._restored = asyncio.get_running_loop().create_future()

    def restore(self, *, arrive: bool) -> None:
        """The network is back: the held requests arrive now, or never (their sender died)."""
        if self._restored is not None and not self._restored.done():
            self._restored.set_result(arrive)
        self._restored = None

    def replied_to(self, message_id: int) -> int:
        return sum(1 for r in self.replies if r.reply_to == message_id and r.photo.startswith(PNG))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != TOKEN:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        await asyncio.sleep(self.latency)
        restored = self._restored
        if restored is not None and (self._cut is None or method in self._cut):
            self.parked.append(method)
            if not await asyncio.shield(restored):
                return web.Response(status=499)  # never arrived: its sender is gone, nobody reads this
        self.calls[method] += 1
        form = await read_form(request)
        answer = {
            "getMe": self.get_me, "deleteWebhook": self.true, "getUpdates": self.get_updates,
            "sendPhoto": self.send, "sendMessage": self.send,
        }.get(method)
        if answer is None:
            self.unknown.append(method)
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.json_response({"ok": True, "result": await answer(method, form)})

    async def get_me(self, method: str, form: Any) -> Any:
        return {"id": 123456, "is_bot": True, "first_name": "Imagine", "username": "imagine_test_bot"}

    async def true(self, method: str, form: Any) -> Any:
        return True

    async def get_updates(self, method: str, form: Any) -> Any:
        if "offset" in form:
            offset = int(form["offset"])
            self.confirmed_below = max(self.confirmed_below, offset)
            kept = []
            for update in self.pending:
                uid = update["update_id"]
                if uid < offset and self.replays.get(uid, 0) > 0:
                    self.replays[uid] -= 1  # this confirmation is lost: served once more
                    kept.append(update)
                elif uid >= offset:
                    kept.append(update)
            self.pending = kept
        deadline = time.monotonic() + float(form.get("timeout", 0))
        while not self.pending and not self._closing and time.monotonic() < deadline:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        batch = self.pending[: int(form.get("limit", 100))]
        for update in batch:
            self.served[update["update_id"]] += 1
        if batch and self.cut_after_delivery:
            self.cut_after_delivery = False
            self.cut()
        return batch

    async def send(self, method: str, form: Any) -> Any:
        chat_id = int(form["chat_id"])
        reply_to = json.loads(form["reply_parameters"])["message_id"] if "reply_parameters" in form else None
        reply = Reply(method, chat_id, reply_to, text=str(form.get("text", form.get("caption", ""))))
        if "photo" in form:  # an upload is a part of its own: photo = "attach://<part name>"
            reply.photo = form[form["photo"].removeprefix("attach://")]
        self.replies.append(reply)
        self._next_id += 1
        message: dict[str, Any] = {"message_id": self._next_id, "date": int(time.time()),
                                   "chat": {"id": chat_id, "type": "private"}}
        if reply.photo:
            message["photo"] = [{"file_id": "f", "file_unique_id": "u", "width": 512, "height": 512}]
        else:
            message["text"] = reply.text
        return message

    def close(self) -> None:
        self._closing = True
        self._arrived.set()
        self.restore(arrive=False)


async def read_form(request: web.Request) -> dict[str, Any]:
    """A request's fields as aiogram sends them: urlencoded, or multipart with a file (bytes)."""
    if not request.content_type.startswith("multipart/"):
        return dict(await request.post())
    form: dict[str, Any] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        assert isinstance(part, BodyPartReader) and part.name is not None
        data = await part.read()
        form[part.name] = bytes(data) if part.filename else data.decode()
    return form


@asynccontextmanager
async def fake_telegram() -> AsyncIterator[tuple[FakeTelegram, str]]:
    tg = FakeTelegram()
    app = web.Application()
    app.router.add_route("POST", "/bot{token}/{method}", tg.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield tg, f"http://127.0.0.1:{port}"
    finally:
        tg.close()
        await runner.cleanup()


def imagine_update(n: int) -> dict[str, Any]:
    """Message n of chat 700+n: `/imagine prompt number n`."""
    text = f"/imagine prompt number {n}"
    user = {"id": 700 + n, "is_bot": False, "first_name": f"User {n}"}
    chat = {"id": 700 + n, "type": "private", "first_name": f"User {n}"}
    return {"update_id": 5000 + n, "message": {
        "message_id": 40 + n, "date": int(time.time()), "chat": chat, "from": user,
        "text": text, "entities": [{"type": "bot_command", "offset": 0, "length": len("/imagine")}],
    }}


class BotProcess:
    """The guide's program in its own directory (its SQLite file lives there), run and rerun."""

    def __init__(self, directory: Path, fake: FakeProxy, telegram_url: str) -> None:
        self.directory = directory
        (directory / "tg_bot.py").write_text(bot_program(), encoding="utf-8")
        self.env = {
            **os.environ, "BOT_TOKEN": TOKEN, "TELEGRAM_API_SERVER": telegram_url,
            "MJASYNC_BASE_URL": fake.url, "MJASYNC_API_KEY": fake.api_key or "",
        }
        self.process: asyncio.subprocess.Process | None = None
        self.runs = 0

    @property
    def log(self) -> str:
        return "".join(
            path.read_text(errors="replace")[-4000:] for path in sorted(self.directory.glob("run-*.log"))
        )

    async def start(self) -> None:
        self.runs += 1
        with (self.directory / f"run-{self.runs}.log").open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "tg_bot.py", cwd=self.directory, env=self.env,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait for a state of the servers, failing early (with the bot's log) if the bot died."""
        deadline = time.monotonic() + DEADLINE
        while not condition():
            assert self.process is not None and self.process.returncode is None, f"the bot died:\n{self.log}"
            assert time.monotonic() < deadline, f"not reached within {DEADLINE:g} s: {what}\n{self.log}"
            await asyncio.sleep(0.01)

    async def signal(self, sig: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), DEADLINE)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            await self.signal(signal.SIGKILL)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[FakeProxy, FakeTelegram, BotProcess]]:
    async with FakeProxy("relay", job_seconds=0.6, seed=5) as fake, fake_telegram() as (tg, url):
        bot = BotProcess(tmp_path, fake, url)
        try:
            yield fake, tg, bot
        finally:
            await bot.kill()


def one_job_per_message(fake: FakeProxy, messages: range) -> None:
    prompts = Counter(job.prompt for job in fake.jobs.values())
    assert prompts == Counter(f"prompt number {n}" for n in messages), prompts


async def stop(bot: BotProcess, tg: FakeTelegram) -> None:
    """SIGTERM: aiogram stops polling, the shutdown hook closes the client, the process exits 0."""
    assert await bot.signal(signal.SIGTERM) == 0, bot.log
    assert tg.unknown == [], tg.unknown


@pytest.mark.parametrize("moment", ["submitted", "replying"])
async def test_a_bot_killed_before_replying_answers_every_message_once_paid(
    world: tuple[FakeProxy, FakeTelegram, BotProcess], moment: str,
) -> None:
    """Killed once messages 3-5 are submitted (jobs running), or once every job ended and the
    bot is sending its replies (it stored their final snapshots: a restart answers at once)."""
    fake, tg, bot = world
    await bot.start()
    # Message 0 is answered before anything goes wrong.
    tg.push(imagine_update(0))
    await bot.until(lambda: tg.replied_to(40) == 1, "message 0 answered")
    # Messages 1-2: submitted and confirmed to Telegram, but their replies never get through.
    tg.cut("sendPhoto", "sendMessage")
    for n in (1, 2):
        tg.push(imagine_update(n))
    await bot.until(lambda: len(fake.jobs) == 3 and tg.confirmed_below > 5002, "messages 1-2 submitted, confirmed")
    # Messages 3-5: delivered, then the network is lost: submitted, never confirmed, never answered.
    tg.cut_after_delivery = True
    for n in (3, 4, 5):
        tg.push(imagine_update(n))
    await bot.until(lambda: len(fake.jobs) == 6 and "getUpdates" in tg.parked, "messages 3-5 submitted")
    if moment == "replying":
        await bot.until(lambda: tg.parked.count("sendPhoto") == 5, "the replies to messages 1-5 sent")
    answered_before = {n for n in range(6) if tg.replied_to(40 + n)}
    await bot.kill()
    assert answered_before == {0}, answered_before  # killed before it replied to the others
    tg.restore(arrive=False)

    await bot.start()
    await bot.until(lambda: all(tg.replied_to(40 + n) for n in range(6)) and not tg.pending and
                    tg.confirmed_below > 5005, "every message answered, every update confirmed")
    await stop(bot, tg)

    one_job_per_message(fake, range(6))
    assert {uid: tg.served[uid] for uid in range(5000, 5006)} == {
        5000: 1, 5001: 1, 5002: 1, 5003: 2, 5004: 2, 5005: 2,  # 3-5 were delivered again
    }
    twice = sum(tg.replied_to(40 + n) - 1 for n in range(6))
    assert all(tg.replied_to(40 + n) <= 2 for n in range(6))
    assert {r.chat_id - 700 for r in tg.replies} == set(range(6))
    print(f"\nkill -9 once {moment}: {len(fake.jobs)} jobs on the server for 6 messages, "
          f"{len(tg.replies)} replies, {twice} twice")


async def test_an_update_served_twice_to_one_process_costs_one_job_and_one_reply(
    world: tuple[FakeProxy, FakeTelegram, BotProcess],
) -> None:
    fake, tg, bot = world
    await bot.start()
    tg.cut("sendPhoto", "sendMessage")  # hold the reply until both copies were handled
    tg.push(imagine_update(7), replays=1)
    # Served, confirmed, served again (the confirmation was lost), confirmed: both handled.
    await bot.until(lambda: tg.served[5007] == 2 and not tg.pending and tg.confirmed_below > 5007,
                    "the update handled twice")
    assert len(fake.jobs) == 1
    tg.restore(arrive=True)
    await bot.until(lambda: tg.replied_to(47) >= 1, "the message answered")
    await stop(bot, tg)
    one_job_per_message(fake, range(7, 8))
    assert tg.replied_to(47) == 1 and len(tg.replies) == 1
