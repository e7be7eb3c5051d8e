"""Memory per pending Task: N = 10,000 waits (`--quick`: 2,000) really pending on a FakeProxy.

The jobs are long (job_seconds=600), the waits keep their default 900 s deadline and the poll
interval is an hour, so after the poller's first tick every wait holds its latest snapshot and
sleeps. Two passes over the same tasks:

- RSS: /proc/self/statm resident size before starting the waits and once every wait holds its
  first snapshot, divided by N;
- traced: a tracemalloc snapshot before starting the waits and one at the same point, the
  difference divided by N (the top allocation sites are printed as comments).

Each pass follows fresh handles (`mj.task(id)`), made before the first measurement; what a
handle itself costs is reported apart (`memory.per_handle_traced`).

The waits are cancelled after each pass. The server runs in a child process, so neither figure
counts its memory. Target: < 4 KiB per pending Task (traced).

Two clients, each measured so in a fresh process of its own (spawned), one after the other:
one with the default store (`memory.*`), one whose store is a SQLiteStore on a file in a
temporary directory, removed at the end (`memory.sqlite.*`); same target for both. The records
are written during the submits, before the first measurement, so the figures are what following
a pending task costs: the MemoryStore's records (in memory) are outside them, and what SQLite
allocates itself (its page cache) is seen by the RSS figure only, not by tracemalloc.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import resource
import tempfile
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from _common import BenchError, ServerProcess, Targets, figure, note, run, submit_all

import mjasync

PAGE = resource.getpagesize()


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


async def start_waits(
    mj: mjasync.Client, tasks: Sequence[mjasync.Task]
) -> list[asyncio.Task[mjasync.TaskInfo]]:
    """Start every wait and return once each has its first snapshot and sleeps again."""
    loop = asyncio.get_running_loop()
    seen = 0
    all_seen = asyncio.Event()

    def progressed(info: mjasync.TaskInfo) -> None:
        nonlocal seen
        seen += 1
        if seen == len(tasks):
            all_seen.set()

    waits = [loop.create_task(t.wait(on_progress=progressed)) for t in tasks]  # default 900 s
    await asyncio.wait_for(all_seen.wait(), 120)
    await asyncio.sleep(0.2)  # every waiter is back in its wait
    if any(w.done() for w in waits) or len(mj._poller) != len(tasks):
        raise BenchError("some waits are not pending")
    return waits


async def stop_waits(waits: Sequence[asyncio.Task[mjasync.TaskInfo]]) -> None:
    for wait in waits:
        wait.cancel()
    await asyncio.gather(*waits, return_exceptions=True)
    gc.collect()


def short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


@dataclass(frozen=True)
class Pass:
    """What one client's pending waits cost."""

    pending: int
    per_task_traced: float
    per_task_rss: float
    per_handle_traced: float
    top: list[str]
    """The largest allocation sites (traced pass), as comment lines."""


async def measure(mj: mjasync.Client, n: int) -> Pass:
    """Submit `n` jobs through `mj`, then the RSS pass and the traced pass over fresh handles."""
    ids = [task.id for task in await submit_all(mj, n)]

    handles = [mj.task(task_id) for task_id in ids]  # fresh handles: no snapshot yet
    gc.collect()
    before = rss_bytes()
    waits = await start_waits(mj, handles)
    gc.collect()
    rss_delta = rss_bytes() - before
    pending = sum(not w.done() for w in waits)
    await stop_waits(waits)

    del handles, waits
    gc.collect()
    tracemalloc.start()
    empty = tracemalloc.take_snapshot()
    handles = [mj.task(task_id) for task_id in ids]
    first = tracemalloc.take_snapshot()
    waits = await start_waits(mj, handles)
    gc.collect()
    second = tracemalloc.take_snapshot()
    tracemalloc.stop()
    await stop_waits(waits)

    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<unknown>")]
    diff = second.filter_traces(ignore).compare_to(first.filter_traces(ignore), "lineno")
    handles_diff = first.filter_traces(ignore).compare_to(empty.filter_traces(ignore), "lineno")
    return Pass(
        pending=pending,
        per_task_traced=sum(stat.size_diff for stat in diff) / n,
        per_task_rss=rss_delta / n,
        per_handle_traced=sum(stat.size_diff for stat in handles_diff) / n,
        top=[
            f"alloc {stat.size_diff / n:7.1f} B/task {stat.count_diff / n:5.2f} blocks/task "
            f"{short(stat.traceback[0].filename)}:{stat.traceback[0].lineno}"
            for stat in sorted(diff, key=lambda s: s.size_diff, reverse=True)[:16]
        ],
    )


def report(prefix: str, result: Pass, n: int, targets: Targets) -> None:
    figure(f"{prefix}.pending", result.pending, "tasks")
    figure(f"{prefix}.per_task_traced", result.per_task_traced, "B")
    figure(f"{prefix}.per_task_rss", result.per_task_rss, "B")
    figure(f"{prefix}.per_handle_traced", result.per_handle_traced, "B")
    for line in result.top:
        note(f"{prefix} {line}")
    targets.check(f"{prefix}.per_task_traced", result.per_task_traced, "<", 4096)


def _child_main(conn: Connection, info: dict[str, Any], n: int, with_store: bool) -> None:
    """One client's measurement in a fresh process: the other client's freed memory would
    otherwise be reused and hide this one's from the RSS figure."""
    conn.send(asyncio.run(_child(info, n, with_store)))
    conn.close()


async def _child(info: dict[str, Any], n: int, with_store: bool) -> Pass:
    options: dict[str, Any] = {"auth": info["auth"], "poll_interval": 3600.0}
    if not with_store:
        async with mjasync.Client(info["url"], info["api_key"], **options) as mj:
            return await measure(mj, n)
    with tempfile.TemporaryDirectory(prefix="mjasync-bench-") as tmp:
        store = mjasync.SQLiteStore(Path(tmp) / "jobs.sqlite")
        try:
            async with mjasync.Client(info["url"], info["api_key"], store=store, **options) as mj:
                return await measure(mj, n)
        finally:
            await store.close()


def in_child(info: dict[str, Any], n: int, *, with_store: bool) -> Pass:
    """Run `_child_main` in a spawned process and return its Pass (blocking)."""
    context = multiprocessing.get_context("spawn")
    conn, child = context.Pipe()
    process = context.Process(target=_child_main, args=(child, info, n, with_store), daemon=True)
    process.start()
    child.close()
    try:
        if not conn.poll(600):
            raise BenchError("the measuring process did not answer within 600 s")
        result: Pass = conn.recv()
    except EOFError as exc:
        raise BenchError("the measuring process exited without an answer (see above)") from exc
    finally:
        conn.close()
        process.join(30)
        if process.is_alive():
            process.terminate()
    return result


async def main(args: argparse.Namespace) -> None:
    n = 2000 if args.quick else 10_000
    targets = Targets()
    with ServerProcess.fake(dialect="reference", job_seconds=600.0, seed=1) as server:
        default = await asyncio.to_thread(in_child, server.info, n, with_store=False)
        sqlite = await asyncio.to_thread(in_child, server.info, n, with_store=True)
    report("memory", default, n, targets)
    report("memory.sqlite", sqlite, n, targets)
    targets.finish()


if __name__ == "__main__":
    run(main, __doc__)
