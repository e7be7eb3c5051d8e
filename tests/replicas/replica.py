"""One replica of a bot sharing a RedisStore (run as a process by test_replicas.py).

It submits its own jobs (`<name>-<n>`, the key and the meta), waits for each and writes
`delivered <key> <task id> <finish time> <now> <name>` to its journal, then forgets it; every
half second it calls `resume()`, adopting the jobs of a replica whose lease expired. The replica
named first serves the callbacks of all three; it stops when the file `<journal>.stop` appears.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import mjasync

TOKEN = "replicas-share-one-callback-token"


async def main(config: dict[str, object]) -> None:
    name, journal = str(config["name"]), Path(str(config["journal"]))
    stop = journal.with_suffix(".stop")
    store = mjasync.RedisStore(str(config["redis"]), namespace=str(config["namespace"]), lease=2.0)

    def write(line: str) -> None:
        with journal.open("a") as out:
            out.write(line + "\n")

    async def deliver(task: mjasync.Task) -> None:
        try:
            info = await task.wait(timeout=120)
            finish = info.finish_time.timestamp() if info.finish_time else 0.0
            write(f"delivered {task.meta['key']} {info.id} {finish:.3f} {time.time():.3f} {name}")
            await task.forget()
        except mjasync.MjError as exc:  # its record stays open: a later resume() hands it back
            write(f"error {task.meta['key']} {type(exc).__name__}: {exc}")

    async with mjasync.Client(
        str(config["url"]), str(config["api_key"]), auth=config["auth"],  # type: ignore[arg-type]
        store=store, replica=name, poll_interval=4.0, reconcile_delays=(0.1, 0.2), timeout=10.0,
    ) as mj:
        if config["serve"]:
            mj.callbacks.configure("http://127.0.0.1", token=TOKEN)
            await mj.callbacks.serve("127.0.0.1", int(str(config["port"])))
        else:
            mj.callbacks.configure(f"http://127.0.0.1:{config['port']}", token=TOKEN)
        following: set[asyncio.Task[None]] = set()

        def follow(task: mjasync.Task) -> None:
            job = asyncio.create_task(deliver(task))
            following.add(job)
            job.add_done_callback(following.discard)

        await mj.resume()  # the lease and the bus are up before the others start submitting
        write("ready")
        while not journal.with_suffix(".go").exists():  # noqa: ASYNC110 (another process makes it)
            await asyncio.sleep(0.01)
        for n in range(int(str(config["jobs"]))):
            key = f"{name}-{n}"
            follow(await mj.imagine(f"{key} a fox", idempotency_key=key, meta={"key": key}))
        write("submitted")
        while not stop.exists():
            for task in await mj.resume():
                write(f"resumed {task.meta['key']} {task.id} {time.time():.3f}")
                follow(task)
            await asyncio.sleep(0.5)
        for job in following:
            job.cancel()
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
