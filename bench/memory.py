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
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import tracemalloc
from collections.abc import Sequence

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


async def main(args: argparse.Namespace) -> None:
    n = 2000 if args.quick else 10_000
    targets = Targets()
    with ServerProcess.fake(dialect="reference", job_seconds=600.0, seed=1) as server:
        info = server.info
        async with mjasync.Client(
            info["url"], info["api_key"], auth=info["auth"], poll_interval=3600.0
        ) as mj:
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
    traced = sum(stat.size_diff for stat in diff)
    handles_diff = first.filter_traces(ignore).compare_to(empty.filter_traces(ignore), "lineno")
    handle = sum(stat.size_diff for stat in handles_diff)
    figure("memory.pending", pending, "tasks")
    figure("memory.per_task_traced", traced / n, "B")
    figure("memory.per_task_rss", rss_delta / n, "B")
    figure("memory.per_handle_traced", handle / n, "B")
    for stat in sorted(diff, key=lambda s: s.size_diff, reverse=True)[:16]:
        frame = stat.traceback[0]
        note(
            f"alloc {stat.size_diff / n:7.1f} B/task {stat.count_diff / n:5.2f} blocks/task "
            f"{short(frame.filename)}:{frame.lineno}"
        )
    targets.check("memory.per_task_traced", traced / n, "<", 4096)
    targets.finish()


if __name__ == "__main__":
    run(main, __doc__)
