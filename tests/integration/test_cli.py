"""The `mjasync` command: the demo end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mjasync.cli import main


def test_demo_writes_pngs_and_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pictures"
    assert main(["demo", "--jobs", "3", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["jobs"], summary["succeeded"], summary["failed"]) == (3, 3, 0)
    assert summary["submits"] == 3 and summary["requests"] >= 3 + 3
    assert summary["by_callback"] + summary["by_polling"] == 3
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 3
    assert all(p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)


def test_demo_plain_progress_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--jobs", "2", "--out", str(tmp_path), "--plain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("IN_PROGRESS" in line for line in lines)
    assert lines[-1].startswith("2 jobs: 2 succeeded, 0 failed")


def test_bad_jobs_count_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["demo", "--jobs", "0", "--out", str(tmp_path)]) == 2
