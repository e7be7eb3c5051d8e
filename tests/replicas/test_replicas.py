"""Three replica processes on one Redis (issue 13's figures): callbacks reach only the first,
the others get their results through the store's bus well before their 4 s poll; no poll
mixes two live replicas' ids; a replica SIGKILLed mid-batch has its jobs delivered by the others.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from collections import Counter
from pathlib import Path

import pytest

from mjasync.testing import FakeProxy
from tests.conftest import SETTLE_TIMEOUT, eventually
from tests.redis_server import RedisServer, free_port

REPLICA = Path(__file__).with_name("replica.py")
JOBS = 10
NAMES = ("r1", "r2", "r3")


def lines(journal: Path, word: str) -> list[list[str]]:
    """The journal's lines that start with `word`, split."""
    text = journal.read_text() if journal.exists() else ""
    return [line.split() for line in text.splitlines() if line.startswith(word)]


@pytest.mark.stress
async def test_three_replicas_share_callbacks_poll_apart_and_adopt_a_dead_ones_jobs(
    tmp_path: Path, redis_server: RedisServer, redis_namespace: str
) -> None:
    port = free_port()

    def delivered() -> list[list[str]]:
        return [d for j in journals.values() for d in lines(j, "delivered")]

    async with FakeProxy("extended", job_seconds=1.0, seed=13) as fake:
        journals = {name: tmp_path / f"{name}.log" for name in NAMES}
        procs = {}
        for name in NAMES:
            config = {
                "name": name, "journal": str(journals[name]), "redis": redis_server.url,
                "namespace": redis_namespace, "url": fake.url, "api_key": fake.api_key, "auth": fake.auth,
                "serve": name == "r1", "port": port, "jobs": JOBS,
            }
            procs[name] = await asyncio.create_subprocess_exec(
                sys.executable, str(REPLICA), json.dumps(config), cwd=Path(__file__).parents[2]
            )
        try:
            await eventually(lambda: all(lines(j, "ready") for j in journals.values()))
            for journal in journals.values():
                journal.with_suffix(".go").touch()
            # r3 dies as soon as its jobs are on the server, long before they end
            await eventually(lambda: bool(lines(journals["r3"], "submitted")))
            procs["r3"].kill()
            await procs["r3"].wait()
            await eventually(lambda: len({d[1] for d in delivered()}) == 3 * JOBS, timeout=3 * SETTLE_TIMEOUT)
        finally:
            for journal in journals.values():
                journal.with_suffix(".stop").touch()
            for proc in procs.values():
                try:
                    assert await asyncio.wait_for(proc.wait(), SETTLE_TIMEOUT) in (0, -9)
                finally:
                    if proc.returncode is None:
                        proc.kill()
                        await proc.wait()
        owner = {task_id: job.prompt.split("-")[0] for task_id, job in fake.jobs.items()}
        polls = [list(r.json["ids"]) for r in fake.requests
                 if r.route == "POST /mj/task/list-by-condition" and isinstance(r.json, dict)]

    by_key = Counter(d[1] for d in delivered())
    paid = Counter(job.prompt for job in fake.jobs.values())
    latency = {name: sorted(float(d[4]) - float(d[3]) for d in delivered() if d[5] == name and d[1].startswith(name))
               for name in ("r1", "r2")}
    adopted = Counter(d[5] for d in delivered() if d[1].startswith("r3"))
    mixed = [ids for ids in polls if {owner[i] for i in ids} >= {"r1", "r2"}]
    print(f"\nreplicas: {len(fake.jobs)} jobs, {sum(paid.values()) - len(paid)} paid twice, "
          f"{3 * JOBS - len(by_key)} lost, {sum(by_key.values()) - len(by_key)} delivered twice; "
          f"r3's jobs delivered by {dict(adopted)}; result latency after the job's end (poll interval 4 s): "
          + ", ".join(f"{n} p50 {statistics.median(v) * 1000:.0f} ms p99 {v[-1] * 1000:.0f} ms"
                      for n, v in latency.items())
          + f"; {len(polls)} list-by-condition polls, {len(mixed)} mixing r1 and r2"
          + "".join(f"\n  {' '.join(e)}" for j in journals.values() for e in lines(j, "error")))
    assert len(fake.jobs) == 3 * JOBS and max(paid.values()) == 1, "a job paid twice"
    assert set(by_key) == {f"{n}-{i}" for n in NAMES for i in range(JOBS)}, "a job's result lost"
    assert statistics.median(latency["r2"]) < 1.0, "r2's results came by polling, not over the bus"
    assert not mixed, "one poll carried the ids of two live replicas"
    assert sum(adopted.values()) >= JOBS and "r3" not in adopted
