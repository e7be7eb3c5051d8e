"""Callbacks across replicas: a SUCCESS callback reaches replica A, whose client waits for
nothing; it crosses the store's bus (Redis pub/sub on a real redis-server) to replica B, whose
`wait()` returns once the terminal state is confirmed by one fetch. Measured from the callback's
arrival at A to B's wait returning, with 1,000 jobs (`--quick`: 200) pending on B and
`poll_interval=10` (a result in time comes by callback). A and B are two clients with their own
`RedisStore` connections, in one process (one clock). Target: p99 < 20 ms on loopback.

Also the cost of a RedisStore on submits: B's submit rate against a store-less client's on the
same simulator (its records are written before each request leaves).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from _common import RedisProcess, ServerProcess, Targets, figure, report_latency, run, timed_receiver

import mjasync

TOKEN = "bench-replicas-share-this-token"


async def submit_rate(mj: mjasync.Client, count: int) -> float:
    limit = asyncio.Semaphore(64)

    async def one(index: int) -> None:
        async with limit:
            await mj.imagine(f"rate job {index}")

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - start)


async def main(args: argparse.Namespace) -> None:
    jobs, spread, job_seconds = (200, 1.0, 3.0) if args.quick else (1000, 3.0, 20.0)
    targets = Targets()
    arrived: dict[str, float] = {}
    latencies: list[float] = []
    fake = ServerProcess.fake(dialect="reference", job_seconds=job_seconds, seed=1)
    with RedisProcess() as redis, fake as server:
        if redis is None:
            return
        info = server.info
        common = {"auth": info["auth"], "poll_interval": 10.0}
        store_a = mjasync.RedisStore(redis.url, namespace="bench")
        store_b = mjasync.RedisStore(redis.url, namespace="bench")
        async with (
            mjasync.Client(info["url"], info["api_key"], store=store_a, replica="a", **common) as a,
            mjasync.Client(info["url"], info["api_key"], store=store_b, replica="b", **common) as b,
            mjasync.Client(info["url"], info["api_key"], **common) as plain,
        ):
            async with timed_receiver(a.callbacks.aiohttp_handler(), arrived) as public:
                a.callbacks.configure(public, token=TOKEN)
                b.callbacks.configure(public, token=TOKEN)  # B's jobs call back to A only
                await a.resume()
                await b.resume()  # both replicas hear the bus from here on

                async def one(index: int) -> None:
                    await asyncio.sleep(spread * index / jobs)
                    task = await b.imagine(f"replica latency job {index}")
                    await task.wait(timeout=120)
                    latencies.append(time.perf_counter() - arrived[task.id])

                await asyncio.gather(*(one(i) for i in range(jobs)))
            stats = b.stats
            count = 500 if args.quick else 3000
            plain_rates, redis_rates = [], []
            for _ in range(3):
                plain_rates.append(await submit_rate(plain, count))
                redis_rates.append(await submit_rate(b, count))
        await store_a.close()
        await store_b.close()
    report_latency("replica", latencies, stats, targets, 20.0)
    plain_rate, redis_rate = statistics.median(plain_rates), statistics.median(redis_rates)
    figure("replica.submit_plain", plain_rate, "req/s")
    figure("replica.submit_redis", redis_rate, "req/s")
    figure("replica.redis_store_overhead", (plain_rate / redis_rate - 1) * 100, "%")
    targets.finish()


if __name__ == "__main__":
    run(main, __doc__)
