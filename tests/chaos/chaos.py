"""The chaos run: many imagine jobs against a simulator that fails in every way at once.

Every job must end as a SUCCESS TaskInfo or a typed mjasync error; the simulator must record at
most one job per state tag; every recorded job must reach its caller (as a Task, or named by the
tag of a SubmitUncertainError); no asyncio task and no warning may be left behind.

    python -m tests.chaos.chaos --jobs 10000 --seed 3     # a local soak run
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
import warnings
from typing import Any

import attrs

import mjasync
from mjasync.testing import FakeProxy

FAULTS: tuple[tuple[Any, float], ...] = (
    ("http_500", 0.025),
    ("http_502", 0.025),
    ("http_503", 0.025),
    ("http_504", 0.025),
    ("reset_before_record", 0.025),
    ("reset_after_record", 0.025),
    ("http_429", 0.05),
    ("malformed_json", 0.03),
)


@attrs.define
class Report:
    jobs: int
    seed: int
    seconds: float = 0.0
    outcomes: collections.Counter[str] = attrs.field(factory=collections.Counter)
    untyped: list[str] = attrs.field(factory=list)
    recorded: int = 0
    duplicates: int = 0
    lost: int = 0
    leftover_tasks: int = 0
    warnings: int = 0
    client: mjasync.ClientStats = attrs.field(factory=mjasync.ClientStats)
    server_requests: int = 0
    callbacks_sent: int = 0
    callbacks_dropped: int = 0

    @property
    def ok(self) -> bool:
        return not (self.untyped or self.duplicates or self.lost or self.leftover_tasks or self.warnings)

    def table(self) -> str:
        rows = [
            ("jobs", self.jobs), ("seed", self.seed), ("seconds", f"{self.seconds:.1f}"),
            *((f"outcome: {name}", n) for name, n in sorted(self.outcomes.items())),
            ("untyped exceptions", len(self.untyped)), ("jobs recorded by the server", self.recorded),
            ("duplicate recorded submits", self.duplicates), ("lost jobs", self.lost),
            ("client requests", self.client.requests), ("client retries", self.client.retries),
            ("reconciles (found)", f"{self.client.reconciles} ({self.client.reconciled})"),
            ("found later in the background (find)", self.client.found_later),
            ("results by callback / by polling",
             f"{self.client.resolved_by_callback} / {self.client.resolved_by_poll}"),
            ("server requests", self.server_requests),
            ("callbacks sent / dropped", f"{self.callbacks_sent} / {self.callbacks_dropped}"),
            ("asyncio tasks left", self.leftover_tasks), ("warnings", self.warnings),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


async def _one(mj: mjasync.Client, prompt: str) -> mjasync.Task | mjasync.TaskInfo | BaseException:
    try:
        task = await mj.imagine(prompt)
    except Exception as exc:
        return exc
    try:
        return await task.wait(timeout=120)
    except Exception as exc:
        return exc


async def run(jobs: int, seed: int, *, job_seconds: float = 0.5) -> Report:
    """One chaos run on the reference dialect (its task list and queue allow complete look-ups)."""
    report = Report(jobs=jobs, seed=seed)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with FakeProxy("reference", job_seconds=job_seconds, seed=seed) as fake:
            for kind, rate in FAULTS:
                fake.faults.add(kind, "any", rate=rate)
            fake.faults.callback_drop_rate = 0.2
            fake.faults.callback_duplicate_rate = 0.05
            fake.faults.callback_reorder = True
            async with mjasync.Client(
                fake.url, fake.api_key, auth=fake.auth, poll_interval=0.1, retry_backoff=0.01,
                reconcile_delays=(0.05, 0.2), timeout=30.0,
            ) as mj:
                await mj.callbacks.serve("127.0.0.1", 0)
                results = await asyncio.gather(*(_one(mj, f"chaos {seed} job {i}") for i in range(jobs)))
                report.client = attrs.evolve(mj.stats)
            report.server_requests = fake.stats.total_requests
            report.callbacks_sent = fake.stats.callbacks_sent
            report.callbacks_dropped = fake.stats.callbacks_dropped
            report.recorded = fake.stats.accepted_submits
            report.duplicates = sum(n - 1 for n in fake.stats.submits_by_state.values() if n > 1)
            reached = set()
            for result in results:
                if isinstance(result, mjasync.TaskInfo):
                    report.outcomes["SUCCESS" if result.succeeded else result.status.value] += 1
                    reached.add(result.id)
                elif isinstance(result, mjasync.MjError):
                    report.outcomes[type(result).__name__] += 1
                    if isinstance(result, mjasync.SubmitUncertainError):
                        reached.update(j.id for j in fake.jobs.values() if (j.state or "").endswith(result.state_tag))
                    task = getattr(result, "task", None)
                    if isinstance(task, mjasync.TaskInfo):
                        reached.add(task.id)
                    if isinstance(result, mjasync.WaitTimeoutError):
                        reached.add(result.task_id)
                else:
                    report.untyped.append(repr(result))
            report.lost = len(set(fake.jobs) - reached)
        await asyncio.sleep(0)
        report.leftover_tasks = len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])
    report.warnings = len(caught)
    report.seconds = time.perf_counter() - started
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seed", type=int, action="append", help="repeatable; default 1, 2, 3")
    args = parser.parse_args()
    failed = False
    for seed in args.seed or (1, 2, 3):
        report = asyncio.run(run(args.jobs, seed, job_seconds=max(0.5, args.jobs / 2000)))
        print(report.table(), end="\n\n")
        for line in report.untyped[:10]:
            print("untyped:", line)
        failed = failed or not report.ok
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
