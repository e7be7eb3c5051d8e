"""Crash test: a real bot process with a SQLiteStore, SIGKILLed mid-batch and restarted
(`mjasync demo --crash`, whose bot is `mjasync._crash_demo` run as a program)."""

from __future__ import annotations

import json
import sys

import pytest

from mjasync import cli

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


@pytest.mark.stress
@pytest.mark.parametrize("seed", [1, 2])
def test_a_bot_killed_three_times_loses_no_job_and_pays_none_twice(
    seed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["demo", "--crash", "--jobs", "150", "--kills", "3", "--seed", str(seed), "--json"])
    report = json.loads(capsys.readouterr().out)
    with capsys.disabled():
        print(f"\ncrash test (seed {seed}): {report}")
    assert len(report["killed_after"]) == 3, "every kill landed before the bot finished"
    assert report["paid_twice"] == 0
    assert report["lost"] == 0, "a job's result never reached the bot"
    assert report["recorded"] == 150
    assert code == 0


def test_the_crash_demo_refuses_too_few_jobs_for_its_kills(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--crash", "--jobs", "30", "--kills", "16"]) == 2
    assert "--kills" in capsys.readouterr().err
