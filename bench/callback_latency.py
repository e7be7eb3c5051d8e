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
import time

from _common import ServerProcess, Targets, report_latency, run, timed_receiver

import mjasync


async def main(args: argparse.Namespace) -> None:
    jobs, spread, job_seconds = (200, 1.0, 3.0) if args.quick else (1000, 3.0, 20.0)
    targets = Targets()
    arrived: dict[str, float] = {}
    latencies: list[float] = []
    with ServerProcess.fake(dialect="reference", job_seconds=job_seconds, seed=1) as server:
        info = server.info
        async with mjasync.Client(info["url"], info["api_key"], auth=info["auth"], poll_interval=10.0) as mj:
            async with timed_receiver(mj.callbacks.aiohttp_handler(), arrived) as public:
                mj.callbacks.configure(public)

                async def one(index: int) -> None:
                    await asyncio.sleep(spread * index / jobs)
                    task = await mj.imagine(f"latency job {index}")
                    await task.wait(timeout=120)
                    latencies.append(time.perf_counter() - arrived[task.id])

                await asyncio.gather(*(one(i) for i in range(jobs)))
            stats = mj.stats
    report_latency("callback", latencies, stats, targets, 5.0)
    targets.finish()


if __name__ == "__main__":
    run(main, __doc__)
