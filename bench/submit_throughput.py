"""Imagine submits per second at concurrency 64: SDK `mj.imagine()` vs raw aiohttp.

Both sides hit the same minimal aiohttp server (in a child process, so its CPU is not the
client's). The raw side posts the same JSON body (prompt, botType and a `state` tag), decodes
the answer with `json.loads`, checks `code` in (1, 21, 22) and reads `result`. Rounds alternate
raw, sdk, raw, sdk, ...; the figures are the medians and their ratio (target >= 0.9x; design.md
section 9 asks >= 0.8x).
"""

from __future__ import annotations

import argparse
import json
import uuid

import aiohttp
from _common import (
    ACCEPTED,
    API_KEY,
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


async def main(args: argparse.Namespace) -> None:
    rounds, total = (3, 300) if args.quick else (9, 3000)
    targets = Targets()
    with ServerProcess.minimal() as server:
        submit_url = f"{server.url}/mj/submit/imagine"
        headers = {**raw_headers(), "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=100)  # the SDK's own connector limit
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            mjasync.Client(server.url, API_KEY) as mj,
        ):

            async def raw(index: int) -> None:
                state = f"mja-{uuid.uuid4().hex}"
                body = {"prompt": f"a cat {index}", "botType": "MID_JOURNEY", "state": state}
                data = json.dumps(body, ensure_ascii=False).encode()
                async with session.post(submit_url, data=data, headers=headers) as response:
                    answer = json.loads(await response.read())
                if response.status != 200 or answer.get("code") not in ACCEPTED:
                    raise BenchError(f"raw submit answered HTTP {response.status}: {answer!r}")
                if not isinstance(answer.get("result"), str):
                    raise BenchError(f"raw submit answered no task id: {answer!r}")

            async def sdk(index: int) -> None:
                await mj.imagine(f"a cat {index}")

            results = await alternate(
                {"raw": raw, "sdk": sdk}, rounds=rounds, total=total, concurrency=CONCURRENCY, server=server
            )
    report_ratio("submit", results, targets, target=0.9, also=0.8)
    targets.finish()


if __name__ == "__main__":
    run(main, __doc__)
