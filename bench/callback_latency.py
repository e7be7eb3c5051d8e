"""Callback latency: from a SUCCESS callback reaching the receiver to `wait()` returning.

1,000 jobs (`--quick`: 200) are pending at once on a FakeProxy ("reference", which sends
notifyHook callbacks) in a child process, with `poll_interval=10`, so a result that comes
in time comes by callback. Submits are spread over a few seconds so completions are too (as in
real life), not one burst. The receiver is `mj.callbacks.aiohttp_handler()` behind a thin
wrapper that notes when each SUCCESS callback arrived; the latency includes the confirming fetch
the SDK makes before a terminal callback counts. Target: p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from _common import ServerProcess, Targets, figure, note, run
from aiohttp import web

import mjasync


async def main(args: argparse.Namespace) -> None:
    jobs, spread, job_seconds = (200, 1.0, 3.0) if args.quick else (1000, 3.0, 20.0)
    targets = Targets()
    arrived: dict[str, float] = {}
    latencies: list[float] = []
    with ServerProcess.fake(dialect="reference", job_seconds=job_seconds, seed=1) as server:
        info = server.info
        async with mjasync.Client(info["url"], info["api_key"], auth=info["auth"], poll_interval=10.0) as mj:
            handler = mj.callbacks.aiohttp_handler()

            async def timed(request: web.Request) -> web.StreamResponse:
                body = await request.read()
                snapshot = json.loads(body)
                if snapshot.get("status") == "SUCCESS":
                    arrived.setdefault(snapshot["id"], time.perf_counter())
                return await handler(request)

            app = web.Application()
            app.router.add_post("/hooks/{token}", timed)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            mj.callbacks.configure(f"http://127.0.0.1:{runner.addresses[0][1]}/hooks")

            async def one(index: int) -> None:
                await asyncio.sleep(spread * index / jobs)
                task = await mj.imagine(f"latency job {index}")
                await task.wait(timeout=120)
                latencies.append(time.perf_counter() - arrived[task.id])

            try:
                await asyncio.gather(*(one(i) for i in range(jobs)))
            finally:
                await runner.cleanup()
            stats = mj.stats
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    note(f"results by callback {stats.resolved_by_callback}, by polling {stats.resolved_by_poll}")
    figure("callback.jobs", jobs, "jobs")
    figure("callback.p50", p50, "ms")
    figure("callback.p99", p99, "ms")
    figure("callback.max", latencies[-1] * 1000, "ms")
    figure("callback.by_callback", stats.resolved_by_callback, "jobs")
    targets.check("callback.p99", p99, "<", 5.0)
    targets.finish()


if __name__ == "__main__":
    run(main, __doc__)
