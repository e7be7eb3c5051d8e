"""`mjasync imagine` and `mjasync describe` against a FakeProxy named by MJASYNC_BASE_URL / MJASYNC_API_KEY."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mjasync.cli import main
from mjasync.testing import FakeProxy
from tests.conftest import default_client_options

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeProxy]:
    async with FakeProxy("extended", job_seconds=0.05) as fake:
        monkeypatch.setenv("MJASYNC_BASE_URL", fake.url)
        monkeypatch.setenv("MJASYNC_API_KEY", fake.api_key or "")
        monkeypatch.setenv("MJASYNC_AUTH", "authorization")
        default_client_options(monkeypatch, poll_interval=0.01, retry_backoff=0.001)
        yield fake


def pngs(directory: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(directory.glob("*.png"))]


async def run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_imagine_upscales_and_writes_pngs(
    server: FakeProxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run("imagine", "a red fox", "a blue tram", "--upscale", "2", "--out", str(tmp_path), "--json")
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["jobs"], summary["succeeded"], summary["failed"]) == (2, 2, 0)
    for record in summary["tasks"]:
        assert server.jobs[record["upscale_id"]].parent_id == record["id"]
        assert server.jobs[record["upscale_id"]].action == "UPSCALE"
        assert record["image"].startswith(str(tmp_path))
    images = pngs(tmp_path)
    assert len(images) == 2 and all(image.startswith(b"\x89PNG") for image in images)
    actions = [r.json for r in server.requests if r.route == "POST /mj/submit/action"]
    assert all(body and "::upsample::2::" in body["customId"] for body in actions) and len(actions) == 2


async def test_imagine_plain_progress_and_a_failure_exit_code(
    server: FakeProxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("imagine", "a FAILJOB tram", "a red fox", "--out", str(tmp_path), "--plain") == 1
    captured = capsys.readouterr()
    assert "IN_PROGRESS" in captured.out and "failed: TaskFailedError" in captured.out
    assert captured.out.splitlines()[-1].startswith("2 jobs: 1 succeeded, 1 failed")
    assert "error: 'a FAILJOB tram': TaskFailedError" in captured.err


async def test_describe_prints_the_prompts(
    server: FakeProxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(PNG)
    assert await run("describe", str(image), "--json") == 0
    answer = json.loads(capsys.readouterr().out)
    assert len(answer["prompts"]) == 4 and answer["prompts"][0].startswith("1️⃣")
    (body,) = [r.json for r in server.requests if r.route == "POST /mj/submit/describe"]
    assert body is not None and body["base64"].startswith("data:image/png;base64,")
    assert await run("describe", str(image), "--plain") == 0
    assert capsys.readouterr().out.count("️⃣") >= 4


async def test_configuration_errors_exit_2(
    server: FakeProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("describe", str(tmp_path / "missing.png")) == 2
    assert "missing.png" in capsys.readouterr().err
    monkeypatch.delenv("MJASYNC_BASE_URL")
    assert await run("imagine", "a cat", "--out", str(tmp_path)) == 2
    assert "MJASYNC_BASE_URL" in capsys.readouterr().err
    assert server.stats.accepted_submits == 0


async def test_wrong_auth_style_fails_the_job(
    server: FakeProxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("imagine", "a cat", "--auth", "bearer", "--out", str(tmp_path), "--json") == 1
    (record,) = json.loads(capsys.readouterr().out)["tasks"]
    assert record["error"].startswith("AuthenticationError")
