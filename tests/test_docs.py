"""Every ```python block in README.md and docs/ runs, against the simulator.

Blocks read MJASYNC_BASE_URL / MJASYNC_API_KEY, which point at a FakeProxy (relay dialect, so
the default Bearer auth applies; the callbacks guide runs on the extended dialect, which sends callbacks). Each block runs as its own program (`asyncio.run` included) in
a worker thread; poll intervals are shortened so the suite stays fast. The callback guide's
FastAPI and discord.py examples run on the stand-ins in tests/doc_stubs, and are then driven:
the FastAPI route gets a good and a bad delivery, the bot must have posted a PNG. A block whose
first line is `# file: NAME` is a program that runs forever (the durable-jobs guide's Telegram
bot): its own test runs it as a process (tests/integration/test_durable_guide.py).
"""

from __future__ import annotations

import asyncio
import re
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from mjasync.testing import FakeProxy
from tests.conftest import SETTLE_TIMEOUT, default_client_options

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
Dialect = Literal["reference", "extended", "relay"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


PROGRAM = "# file:"
"""The first line of a block that is a whole program run forever (a bot): its own test runs it."""


def blocks() -> Iterator[tuple[str, str]]:
    for path in FILES:
        for number, match in enumerate(BLOCK.finditer(path.read_text(encoding="utf-8")), 1):
            code = textwrap.dedent(match.group(1))
            if not code.startswith(PROGRAM):
                yield f"{path.relative_to(ROOT)}#{number}", code


BLOCKS = list(blocks())


def test_docs_have_examples() -> None:
    assert len(BLOCKS) >= 8
    assert {name.split("#")[0] for name, _ in BLOCKS} >= {"README.md", "docs/quickstart.md"}


def dialect_for(name: str) -> Dialect:
    """Relay (Bearer, the default auth) for most pages; the callbacks guide runs where the server
    sends callbacks (relays drop `notifyHook`), so its output shows them."""
    return "extended" if name.startswith("docs/guide/callbacks.md") else "relay"


@pytest.fixture
async def server(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[FakeProxy]:
    async with FakeProxy(dialect_for(request.node.callspec.params["name"]), job_seconds=0.2) as fake:
        monkeypatch.setenv("MJASYNC_BASE_URL", fake.url)
        monkeypatch.setenv("MJASYNC_API_KEY", fake.api_key or "")
        default_client_options(monkeypatch, auth=fake.auth, poll_interval=0.05, reconcile_delays=(0.05, 0.1))
        monkeypatch.chdir(tmp_path)
        monkeypatch.syspath_prepend(str(Path(__file__).parent / "doc_stubs"))
        monkeypatch.setenv("DISCORD_TOKEN", "stub")
        yield fake


@pytest.mark.parametrize(("name", "code"), BLOCKS, ids=[name for name, _ in BLOCKS])
async def test_block_runs(
    server: FakeProxy, name: str, code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}

    def run() -> None:
        exec(compile(code, name, "exec"), namespace)

    await asyncio.wait_for(asyncio.to_thread(run), timeout=SETTLE_TIMEOUT)
    printed = capsys.readouterr().out
    if name == "docs/guide/callbacks.md#1":
        # Its poll interval (10 s) is far longer than the job: the callback ends the wait.
        assert "SUCCESS by callback: 1 by polling: 0" in printed, printed
    if "from fastapi import" in code:
        await drive_fastapi(namespace)
    if "from discord.ext import commands" in code:
        check_bot()


async def drive_fastapi(namespace: dict[str, Any]) -> None:
    app, mj = namespace["app"], namespace["mj"]
    ((path, _),) = app.routes.items()
    token = mj.callbacks.hook_url.rsplit("/", 1)[1]
    unknown_task = b'{"id": "123", "status": "IN_PROGRESS", "progress": "15%"}'
    assert await app.call(path, token, unknown_task) == 200
    assert await app.call(path, "wrong", unknown_task) == 400
    assert await app.call(path, token, b"x" * (mj.callbacks.max_body + 1)) == 413
    await mj.close()


def check_bot() -> None:
    from discord.ext import commands  # the stand-in, on sys.path for this test

    context = commands.RUNS.pop()
    (reply,) = context.replies
    assert reply.edits[0] == f"Submitting: {commands.PLAYED_PROMPT}"
    assert any("SUCCESS" in edit for edit in reply.edits)
    (image,) = context.files
    assert image.data.startswith(b"\x89PNG") and image.filename.endswith(".png")
