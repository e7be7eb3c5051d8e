"""Polling cost of N pending jobs: the SDK's batched poller vs one fetch per task per tick.

For each N (1,000 and 10,000; `--quick`: 1,000 with shorter jobs) and each side, a fresh
FakeProxy in a child process gets N imagine jobs (submitted first, not timed); its counters are
reset, then every job is waited at once:

- sdk: `asyncio.gather(*(t.wait() for t in tasks))`; requests are attributed to the poller tick
  during which they were sent (a counting wrapper around the poller's reader);
- naive: what peer SDKs do, one `GET /mj/task/{id}/fetch` per pending task per tick, ticks
  `poll_interval` apart and never overlapping (same connector limit, 100).

Figures per side: requests per tick (max, mean), ticks, total poll requests (the server's
count), client CPU seconds (`time.process_time`, the server runs elsewhere) and wall seconds.
Target: the SDK sends at most ceil(N/100) requests per tick.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp
from _common import BenchError, ServerProcess, Targets, figure, run, submit_all

import mjasync
from mjasync._poller import TaskReader

POLL_ROUTES = ("POST /mj/task/list-by-condition", "GET /mj/task/{id}/fetch")
TERMINAL = frozenset({"SUCCESS", "FAILURE", "CANCEL"})


@dataclass(frozen=True)
class Scenario:
    n: int
    job_seconds: float
    interval: float


@dataclass
class PollRun:
    per_tick: list[int]
    cpu: float
    wall: float
    server_requests: int = 0
    max_batch: int = 0


class CountingReader:
    """The poller's reader, counting each request against the poller tick it was sent in."""

    def __init__(self, inner: TaskReader, ticks: Callable[[], int], per_tick: Counter[int]) -> None:
        self._inner, self._ticks, self._per_tick = inner, ticks, per_tick

    @property
    def batch_size(self) -> int:
        return self._inner.batch_size

    @property
    def batched(self) -> bool:
        return self._inner.batched

    async def list_by_ids(self, ids: Sequence[str]) -> list[mjasync.TaskInfo]:
        self._per_tick[self._ticks()] += 1
        return await self._inner.list_by_ids(ids)

    async def fetch_or_none(self, task_id: str) -> mjasync.TaskInfo | None:
        self._per_tick[self._ticks()] += 1
        return await self._inner.fetch_or_none(task_id)


async def sdk_wait(mj: mjasync.Client, tasks: Sequence[mjasync.Task], deadline: float) -> PollRun:
    poller = mj._poller
    per_tick: Counter[int] = Counter()
    poller.reader = CountingReader(poller.reader, lambda: poller.ticks, per_tick)
    cpu, start = time.process_time(), time.perf_counter()
    async with asyncio.timeout(deadline):
        infos = await asyncio.gather(*(t.wait(timeout=None) for t in tasks))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - start
    result = PollRun([per_tick[t] for t in range(1, poller.ticks + 1)], cpu, wall)
    if not all(info.succeeded for info in infos):
        raise BenchError("a job did not succeed")
    return result


async def naive_wait(
    session: aiohttp.ClientSession,
    base: str,
    headers: dict[str, str],
    ids: Sequence[str],
    interval: float,
    deadline: float,
) -> PollRun:
    async def done(task_id: str) -> bool:
        async with session.get(f"{base}/mj/task/{task_id}/fetch", headers=headers) as response:
            task = json.loads(await response.read())
        if response.status != 200 or not isinstance(task, dict):
            raise BenchError(f"naive fetch answered HTTP {response.status}")
        if task.get("status") in ("FAILURE", "CANCEL"):
            raise BenchError("a job did not succeed")
        return task.get("status") in TERMINAL

    pending = list(ids)
    per_tick: list[int] = []
    cpu, start = time.process_time(), time.perf_counter()
    async with asyncio.timeout(deadline):
        while pending:
            per_tick.append(len(pending))
            finished = await asyncio.gather(*(done(task_id) for task_id in pending))
            pending = [task_id for task_id, end in zip(pending, finished, strict=True) if not end]
            if pending:
                await asyncio.sleep(interval)
    return PollRun(per_tick, time.process_time() - cpu, time.perf_counter() - start)


async def one_side(side: str, scenario: Scenario) -> PollRun:
    options = {"dialect": "reference", "job_seconds": scenario.job_seconds, "seed": 1}
    with ServerProcess.fake(**options) as server:
        info = server.info
        deadline = scenario.job_seconds * 3 + 120
        async with mjasync.Client(
            info["url"], info["api_key"], auth=info["auth"], poll_interval=scenario.interval
        ) as mj:
            tasks = await submit_all(mj, scenario.n)
            await asyncio.to_thread(server.call, "reset")
            if side == "sdk":
                result = await sdk_wait(mj, tasks, deadline)
            else:
                headers = {"mj-api-secret": info["api_key"], "Accept": "application/json"}
                connector = aiohttp.TCPConnector(limit=100)
                async with aiohttp.ClientSession(connector=connector) as session:
                    ids = [t.id for t in tasks]
                    result = await naive_wait(session, info["url"], headers, ids, scenario.interval, deadline)
        stats = await asyncio.to_thread(server.call, "stats")
    result.server_requests = sum(stats["requests"].get(route, 0) for route in POLL_ROUTES)
    result.max_batch = max(stats["list_batches"], default=0)
    return result


async def main(args: argparse.Namespace) -> None:
    scenarios = (
        [Scenario(1000, job_seconds=1.5, interval=0.2)]
        if args.quick
        else [Scenario(1000, job_seconds=8.0, interval=1.0), Scenario(10_000, job_seconds=20.0, interval=1.0)]
    )
    targets = Targets()
    for scenario in scenarios:
        runs = {side: await one_side(side, scenario) for side in ("sdk", "naive")}
        prefix = f"poll.n{scenario.n}"
        figure(f"{prefix}.interval", scenario.interval, "s")
        for side, result in runs.items():
            figure(f"{prefix}.{side}.per_tick_max", max(result.per_tick), "req")
            figure(f"{prefix}.{side}.per_tick_mean", sum(result.per_tick) / len(result.per_tick), "req")
            figure(f"{prefix}.{side}.ticks", len(result.per_tick), "ticks")
            figure(f"{prefix}.{side}.requests", result.server_requests, "req")
            figure(f"{prefix}.{side}.cpu", result.cpu, "s")
            figure(f"{prefix}.{side}.wall", result.wall, "s")
        sdk, naive = runs["sdk"], runs["naive"]
        if sdk.server_requests != sum(sdk.per_tick) or naive.server_requests != sum(naive.per_tick):
            raise BenchError("the server counted other poll requests than the client sent")
        figure(f"{prefix}.sdk.max_batch", sdk.max_batch, "ids")
        figure(f"{prefix}.request_ratio", sdk.server_requests / naive.server_requests, "x")
        figure(f"{prefix}.cpu_ratio", sdk.cpu / naive.cpu, "x")
        targets.check(f"{prefix}.sdk.per_tick_max", max(sdk.per_tick), "<=", math.ceil(scenario.n / 100))
    targets.finish()


if __name__ == "__main__":
    run(main, __doc__)
