"""Imagine submits per second at concurrency 64: raw aiohttp, SDK `mj.imagine()`, and the SDK
with `store=SQLiteStore(...)`.

All three sides hit the same minimal aiohttp server (in a child process, so its CPU is not the
client's). The raw side posts the same JSON body (prompt, botType and a `state` tag), decodes
the answer with `json.loads`, checks `code` in (1, 21, 22) and reads `result`. The `sdk` side
is a Client with its default store (MemoryStore); the `sdk_sqlite` side a second Client whose
store is a SQLiteStore on a file in a temporary directory (removed at the end): every submit
writes its record before the request leaves and the task id once accepted. Rounds alternate
raw, sdk, sdk_sqlite, raw, ...; the figures are the medians and their ratios. Targets: sdk vs
raw >= 0.9x (design.md section 9 asks >= 0.8x); the store's overhead, `sdk_sqlite` submit time
over `sdk` submit time - 1 (submit time = 1 / rate), <= 25%.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
from _common import (
    ACCEPTED,
    API_KEY,
    BenchError,
    Round,
    ServerProcess,
    Targets,
    alternate,
    figure,
    note,
    raw_headers,
    report_ratio,
    run,
)

import mjasync

CONCURRENCY = 64
STORE_OVERHEAD_TARGET = 25.0
"""Percent: a store write adds at most this much to the SDK's submit time."""


def report_store(
    prefix: str, results: Mapping[str, Sequence[Round]], targets: Targets, *, flushes: int, submits: int
) -> None:
    """The `sdk_sqlite` side: its rate, its ratio to raw, and its overhead over `sdk`."""
    raw, sdk, db = results["raw"], results["sdk"], results["sdk_sqlite"]
    for index, (r, s, d) in enumerate(zip(raw, sdk, db, strict=True)):
        note(
            f"round {index}: sdk_sqlite {d.rate:.0f} req/s {d.client_cpu_us:.0f} us/req, "
            f"ratio {d.rate / r.rate:.3f}, store overhead {(s.rate / d.rate - 1) * 100:.1f}%"
        )
    raw_rate = statistics.median(r.rate for r in raw)
    sdk_rate = statistics.median(r.rate for r in sdk)
    db_rate = statistics.median(r.rate for r in db)
    pairs = [d.rate / r.rate for r, d in zip(raw, db, strict=True)]
    overheads = [(s.rate / d.rate - 1) * 100 for s, d in zip(sdk, db, strict=True)]
    sdk_cpu = statistics.median(r.client_cpu_us for r in sdk)
    db_cpu = statistics.median(r.client_cpu_us for r in db)
    overhead = (sdk_rate / db_rate - 1) * 100
    figure(f"{prefix}.sdk_sqlite", db_rate, "req/s")
    figure(f"{prefix}.sqlite_ratio", db_rate / raw_rate, "x")
    figure(f"{prefix}.sqlite_ratio_min", min(pairs), "x")
    figure(f"{prefix}.sqlite_ratio_max", max(pairs), "x")
    figure(f"{prefix}.sdk_sqlite_cpu", db_cpu, "us/req")
    figure(f"{prefix}.store_extra_cpu", db_cpu - sdk_cpu, "us/req")
    figure(f"{prefix}.store_overhead", overhead, "%")
    figure(f"{prefix}.store_overhead_min", min(overheads), "%")
    figure(f"{prefix}.store_overhead_max", max(overheads), "%")
    figure(f"{prefix}.store_overhead_cpu", (db_cpu / sdk_cpu - 1) * 100, "%")
    figure(f"{prefix}.sdk_sqlite_server_busy", statistics.median(r.server_busy for r in db), "core")
    figure(f"{prefix}.store_ops_per_commit", 2 * submits / flushes, "ops")  # add + set_task_id
    why = "sdk_sqlite time / sdk time - 1"
    targets.check(f"{prefix}.store_overhead", overhead, "<=", STORE_OVERHEAD_TARGET, why=why)


async def main(args: argparse.Namespace) -> None:
    rounds, total = (3, 300) if args.quick else (9, 3000)
    targets = Targets()
    with ServerProcess.minimal() as server, tempfile.TemporaryDirectory(prefix="mjasync-bench-") as tmp:
        submit_url = f"{server.url}/mj/submit/imagine"
        headers = {**raw_headers(), "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=100)  # the SDK's own connector limit
        store = mjasync.SQLiteStore(Path(tmp) / "jobs.sqlite")
        try:
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                mjasync.Client(server.url, API_KEY) as mj,
                mjasync.Client(server.url, API_KEY, store=store) as mj_db,
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

                async def sdk_sqlite(index: int) -> None:
                    await mj_db.imagine(f"a cat {index}")

                results = await alternate(
                    {"raw": raw, "sdk": sdk, "sdk_sqlite": sdk_sqlite},
                    rounds=rounds, total=total, concurrency=CONCURRENCY, server=server,
                )
        finally:
            await store.close()
        submits = rounds * total + max(total // 4, CONCURRENCY)
        flushes = store._flushes
    report_ratio("submit", results, targets, target=0.9, also=0.8)
    report_store("submit", results, targets, flushes=flushes, submits=submits)
    targets.finish()


if __name__ == "__main__":
    run(main, __doc__)
