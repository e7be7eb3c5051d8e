"""Shared pieces of the benchmarks: output lines, servers in child processes, alternating rounds.

Every benchmark prints one line per figure, `name value unit`, then `# target: ...` lines (and
`# also: ...` for secondary targets), then a last line `PASS` or `MISS`. A missed timing target
is not an error: only a broken benchmark (a failed request, a server that does not start) exits
non-zero.

Servers run in a child process (multiprocessing "spawn"), so their CPU is not the client's:
`time.process_time()` in a benchmark measures the client alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing
import operator
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, Final

from aiohttp import web

import mjasync

HOST: Final = "127.0.0.1"
API_KEY: Final = "sk-bench-key"
ACCEPTED: Final = frozenset({1, 21, 22})
FIRST_ID: Final = 1730621718151844
"""The minimal server numbers its 16-digit task ids from here."""
TASK_JSON: Final[Mapping[str, Any]] = {
    # protocol.md section 12.3: a full reference SUCCESS task, as the docs show it.
    "id": "14001929738841620",
    "action": "IMAGINE",
    "status": "SUCCESS",
    "prompt": "猫猫",
    "promptEn": "Cat",
    "description": "/imagine 猫猫",
    "state": None,
    "submitTime": 1689231405854,
    "startTime": 1689231442755,
    "finishTime": 1689231544312,
    "progress": "100%",
    "imageUrl": "https://cdn.discordapp.com/attachments/xxx/xxx/xxxx.png",
    "failReason": None,
    "properties": {"finalPrompt": "Cat"},
}
_OPS: Final[Mapping[str, Callable[[float, float], bool]]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_SPAWN: Final = multiprocessing.get_context("spawn")
_CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The benchmark itself is broken (not a missed target): exit non-zero."""


# --- output ---------------------------------------------------------------------------------


def fmt(value: float) -> str:
    """A figure's value: integers as they are, floats with 3 significant decimals or 1 decimal."""
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1000):
        return str(int(value))
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def figure(name: str, value: float, unit: str) -> None:
    """Print one `name value unit` line."""
    print(f"{name} {fmt(value)} {unit}", flush=True)


def note(text: str) -> None:
    """Print a comment line (ignored by run_all.py)."""
    print(f"# {text}", flush=True)


class Targets:
    """Checks figures against their targets; `finish()` prints the last line, PASS or MISS."""

    def __init__(self) -> None:
        self._primary: list[bool] = []

    def check(
        self, name: str, value: float, op: str, limit: float, *, primary: bool = True, why: str = ""
    ) -> bool:
        ok = _OPS[op](value, limit)
        label = "target" if primary else "also"
        suffix = f" ({why})" if why else ""
        print(f"# {label}: {name} {op} {fmt(limit)} -> {'PASS' if ok else 'MISS'}{suffix}", flush=True)
        if primary:
            self._primary.append(ok)
        return ok

    def finish(self) -> None:
        print("PASS" if self._primary and all(self._primary) else "MISS", flush=True)


def parse_args(doc: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for CI")
    return parser.parse_args()


def run(main: Callable[[argparse.Namespace], Coroutine[Any, Any, None]], doc: str | None) -> None:
    """Parse the arguments, run `main`, exit 2 when the benchmark is broken (never on a MISS)."""
    args = parse_args(doc)
    try:
        asyncio.run(main(args))
    except BenchError as exc:
        print(f"benchmark broken: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


# --- servers in child processes -----------------------------------------------------------------


class ServerProcess:
    """A server in a child process: `info` (its url, key, auth), its CPU time, pipe commands."""

    def __init__(self, target: Callable[[Connection, dict[str, Any]], None], options: dict[str, Any]) -> None:
        self._target = target
        self._options = options
        self._conn: Connection | None = None
        self._process: Any = None
        self.info: dict[str, Any] = {}

    @classmethod
    def minimal(cls) -> ServerProcess:
        """The minimal aiohttp app: imagine submits and task fetches with fixed answers."""
        return cls(_minimal_main, {})

    @classmethod
    def fake(cls, **options: Any) -> ServerProcess:
        """A `FakeProxy(**options)`; commands "stats" and "reset" reach its counters."""
        return cls(_fake_main, options)

    @property
    def url(self) -> str:
        return str(self.info["url"])

    def __enter__(self) -> ServerProcess:
        conn, child = _SPAWN.Pipe()
        self._process = _SPAWN.Process(target=self._target, args=(child, self._options), daemon=True)
        self._process.start()
        child.close()
        self._conn = conn
        try:
            if not conn.poll(60):
                raise BenchError("the server process did not start within 60 s")
            self.info = conn.recv()
        except (EOFError, OSError, BenchError) as exc:
            self.__exit__(None, None, None)
            if isinstance(exc, BenchError):
                raise
            raise BenchError("the server process exited before it was ready (see above)") from exc
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send("stop")
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)
            self._process = None

    def call(self, command: str) -> Any:
        """Send a command to the child and return its answer (blocking; use asyncio.to_thread)."""
        if self._conn is None:
            raise BenchError("the server process is not running")
        self._conn.send(command)
        if not self._conn.poll(60):
            raise BenchError(f"the server process did not answer {command!r}")
        return self._conn.recv()

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the child has used so far (from /proc)."""
        with open(f"/proc/{self._process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _receive(conn: Connection) -> Any:
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


async def _serve_commands(conn: Connection, commands: Mapping[str, Callable[[], Any]]) -> None:
    """Answer the parent's commands until "stop" or until the parent goes away."""
    while True:
        command = await asyncio.to_thread(_receive, conn)
        if command is None or command == "stop":
            return
        handler = commands.get(command)
        conn.send(None if handler is None else handler())


def _minimal_main(conn: Connection, options: dict[str, Any]) -> None:
    asyncio.run(_minimal_serve(conn))


async def _minimal_serve(conn: Connection) -> None:

    ids = itertools.count(FIRST_ID)
    rest = {k: v for k, v in TASK_JSON.items() if k != "id"}
    task_tail = json.dumps(rest, ensure_ascii=False, separators=(",", ":")).encode()[1:]

    async def imagine(request: web.Request) -> web.Response:
        await request.read()
        body = b'{"code":1,"description":"Submit success","result":"%d","properties":{}}' % next(ids)
        return web.Response(body=body, content_type="application/json")

    async def fetch(request: web.Request) -> web.Response:
        task_id = json.dumps(request.match_info["id"]).encode()
        return web.Response(body=b'{"id":' + task_id + b"," + task_tail, content_type="application/json")

    app = web.Application()
    app.router.add_post("/mj/submit/imagine", imagine)
    app.router.add_get("/mj/task/{id}/fetch", fetch)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        port = runner.addresses[0][1]
        conn.send({"url": f"http://{HOST}:{port}", "api_key": API_KEY, "auth": "bearer"})
        await _serve_commands(conn, {})
    finally:
        await runner.cleanup()


def _fake_main(conn: Connection, options: dict[str, Any]) -> None:
    asyncio.run(_fake_serve(conn, options))


async def _fake_serve(conn: Connection, options: dict[str, Any]) -> None:
    from mjasync.testing import FakeProxy

    async with FakeProxy(**options) as fake:

        async def trim() -> None:
            # The request log is for tests; a benchmark sends too many requests to keep it.
            while True:
                await asyncio.sleep(0.5)
                fake.requests.clear()

        def stats() -> dict[str, Any]:
            return {
                "requests": dict(fake.stats.requests),
                "list_batches": list(fake.stats.list_batches),
                "accepted_submits": fake.stats.accepted_submits,
            }

        trimmer = asyncio.get_running_loop().create_task(trim())
        conn.send({"url": fake.url, "api_key": fake.api_key, "auth": fake.auth})
        try:
            await _serve_commands(conn, {"stats": stats, "reset": fake.stats.reset})
        finally:
            trimmer.cancel()


# --- alternating throughput rounds ------------------------------------------------------------------

Op = Callable[[int], Awaitable[object]]


@dataclass(frozen=True)
class Round:
    """One timed round of one side."""

    rate: float
    """Operations per wall second."""
    client_cpu_us: float
    """Client process CPU microseconds per operation."""
    server_busy: float
    """Server CPU seconds per wall second (1.0 = one core saturated)."""


async def run_round(op: Op, total: int, concurrency: int, server: ServerProcess) -> Round:
    """Run `op(0..total-1)` with `concurrency` workers; the rate and the CPU it cost."""
    next_index = itertools.count().__next__

    async def worker() -> None:
        while (index := next_index()) < total:
            await op(index)

    server_cpu = server.cpu_seconds()
    cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    return Round(
        rate=total / wall,
        client_cpu_us=(time.process_time() - cpu) / total * 1e6,
        server_busy=(server.cpu_seconds() - server_cpu) / wall,
    )


async def alternate(
    sides: Mapping[str, Op], *, rounds: int, total: int, concurrency: int, server: ServerProcess
) -> dict[str, list[Round]]:
    """One untimed warm-up per side, then `rounds` timed rounds per side in turn (a, b, a, b, ...)."""
    for op in sides.values():
        await run_round(op, max(total // 4, concurrency), concurrency, server)
    results: dict[str, list[Round]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, op in sides.items():
            results[name].append(await run_round(op, total, concurrency, server))
    return results


def report_ratio(
    prefix: str, results: Mapping[str, list[Round]], targets: Targets, *, target: float, also: float
) -> None:
    """Print the medians of the "raw" and "sdk" sides, their ratio, and check it."""
    raw, sdk = results["raw"], results["sdk"]
    raw_rate = statistics.median(r.rate for r in raw)
    sdk_rate = statistics.median(r.rate for r in sdk)
    ratio = sdk_rate / raw_rate
    pairs = [s.rate / r.rate for r, s in zip(raw, sdk, strict=True)]
    for index, (r, s) in enumerate(zip(raw, sdk, strict=True)):
        note(
            f"round {index}: raw {r.rate:.0f} req/s {r.client_cpu_us:.0f} us/req, "
            f"sdk {s.rate:.0f} req/s {s.client_cpu_us:.0f} us/req, ratio {s.rate / r.rate:.3f}"
        )
    raw_cpu = statistics.median(r.client_cpu_us for r in raw)
    sdk_cpu = statistics.median(r.client_cpu_us for r in sdk)
    figure(f"{prefix}.raw", raw_rate, "req/s")
    figure(f"{prefix}.sdk", sdk_rate, "req/s")
    figure(f"{prefix}.ratio", ratio, "x")
    figure(f"{prefix}.ratio_min", min(pairs), "x")
    figure(f"{prefix}.ratio_max", max(pairs), "x")
    figure(f"{prefix}.raw_cpu", raw_cpu, "us/req")
    figure(f"{prefix}.sdk_cpu", sdk_cpu, "us/req")
    figure(f"{prefix}.sdk_extra_cpu", sdk_cpu - raw_cpu, "us/req")
    figure(f"{prefix}.cpu_ratio", raw_cpu / sdk_cpu, "x")  # the rate ratio if the client is the bottleneck
    figure(f"{prefix}.raw_server_busy", statistics.median(r.server_busy for r in raw), "core")
    figure(f"{prefix}.sdk_server_busy", statistics.median(r.server_busy for r in sdk), "core")
    targets.check(f"{prefix}.ratio", ratio, ">=", target)
    targets.check(f"{prefix}.ratio", ratio, ">=", also, primary=False, why="design.md section 9")


async def submit_all(mj: mjasync.Client, n: int) -> list[mjasync.Task]:
    """Submit `n` imagine jobs, 64 at a time (the set-up of the polling and memory benchmarks)."""
    limit = asyncio.Semaphore(64)

    async def one(index: int) -> mjasync.Task:
        async with limit:
            return await mj.imagine(f"bench job {index}")

    return await asyncio.gather(*(one(i) for i in range(n)))


def raw_headers() -> dict[str, str]:
    """The headers the SDK sends (bearer auth), for the raw aiohttp side."""
    return {
        "User-Agent": "bench-raw",
        "Accept": "application/json",
        "Authorization": f"Bearer {API_KEY}",
    }


# --- a redis-server for the replica benchmarks ---------------------------------------------------


class RedisProcess:
    """`redis-server` on a free loopback port (no persistence) in a temporary directory; None
    from `start()` when it is not installed (the figures are then skipped with a note)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="mjasync-bench-redis-")
        self.url = ""

    def __enter__(self) -> RedisProcess | None:
        path = shutil.which("redis-server")
        if path is None:
            note("redis-server is not installed (apt-get install redis-server): Redis figures skipped")
            return None
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self._process = subprocess.Popen(
            [path, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", self._dir.name],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return self
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise BenchError("redis-server did not start")
            time.sleep(0.05)

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
        self._dir.cleanup()


# --- callback receivers that time what they pass on --------------------------------------------


@contextlib.asynccontextmanager
async def timed_receiver(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], arrived: dict[str, float]
) -> AsyncIterator[str]:
    """A loopback receiver in front of `handler` that notes when each task's SUCCESS callback
    arrived (`perf_counter`); yields its public URL (the token goes after it)."""

    async def timed(request: web.Request) -> web.StreamResponse:
        snapshot = json.loads(await request.read())
        if snapshot.get("status") == "SUCCESS":
            arrived.setdefault(snapshot["id"], time.perf_counter())
        return await handler(request)

    app = web.Application()
    app.router.add_post("/hooks/{token}", timed)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
    finally:
        await runner.cleanup()


def report_latency(
    prefix: str, latencies: list[float], stats: mjasync.ClientStats, targets: Targets, p99_target: float
) -> None:
    """p50 / p99 / max of callback-to-result latencies (seconds), in ms, against a p99 target."""
    latencies = sorted(latencies)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    note(f"results by callback {stats.resolved_by_callback}, by polling {stats.resolved_by_poll}")
    figure(f"{prefix}.jobs", len(latencies), "jobs")
    figure(f"{prefix}.p50", p50, "ms")
    figure(f"{prefix}.p99", p99, "ms")
    figure(f"{prefix}.max", latencies[-1] * 1000, "ms")
    figure(f"{prefix}.by_callback", stats.resolved_by_callback, "jobs")
    targets.check(f"{prefix}.p99", p99, "<", p99_target)
