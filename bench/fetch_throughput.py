"""Task fetches per second at concurrency 64: SDK `mj.fetch(id)` vs raw aiohttp GET + json.loads.

Same method as submit_throughput.py: the minimal aiohttp server in a child process answers
`GET /mj/task/{id}/fetch` with the reference SUCCESS task of protocol.md section 12.3; rounds
alternate raw, sdk, raw, sdk, ...; the figures are the medians and their ratio (target >= 0.9x).
"""

from __future__ import annotations

import argparse
import json

import aiohttp
from _common import (
    API_KEY,
    FIRST_ID,
    BenchError,
    ServerProcess,
    Targets,
    alternate,
    raw_headers,
    report_ratio,
    run,
)

import mjasync

CONCURRENCY = 64
TASK_ID = str(FIRST_ID)


async def main(args: argparse.Namespace) -> None:
    rounds, total = (3, 300) if args.quick else (9, 3000)
    targets = Targets()
    with ServerProcess.minimal() as server:
        fetch_url = f"{server.url}/mj/task/{TASK_ID}/fetch"
        headers = raw_headers()
        connector = aiohttp.TCPConnector(limit=100)  # the SDK's own connector limit
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            mjasync.Client(server.url, API_KEY) as mj,
        ):

            async def raw(index: int) -> None:
                async with session.get(fetch_url, headers=headers) as response:
                    task = json.loads(await response.read())
                if response.status != 200 or not isinstance(task, dict) or task.get("id") != TASK_ID:
                    raise BenchError(f"raw fetch answered HTTP {response.status}: {task!r}")

            async def sdk(index: int) -> None:
                await mj.fetch(TASK_ID)

            results = await alternate(
                {"raw": raw, "sdk": sdk}, rounds=rounds, total=total, concurrency=CONCURRENCY, server=server
            )
    report_ratio("fetch", results, targets, target=0.9, also=0.8)
    targets.finish()


if __name__ == "__main__":
    run(main, __doc__)
