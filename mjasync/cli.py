"""The `mjasync` command: `demo` (offline, on the simulator), `imagine` and `describe` (against the
server in MJASYNC_BASE_URL / MJASYNC_API_KEY), and `simulate` (a standalone fake)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO, cast

import attrs

from ._batch import DEFAULT_MAX_IN_FLIGHT
from ._client import Client
from ._exceptions import MjError
from ._models import TaskInfo
from ._task import DEFAULT_WAIT_TIMEOUT
from ._transport import AuthStyle
from ._validate import AUTH_STYLES

__all__ = ["main"]

DEMO_PROMPTS = (
    "a red fox in snow, watercolor",
    "a lighthouse at dusk, oil painting",
    "a paper boat on a puddle, macro photo",
    "a cat astronaut, 1960s poster",
    "a bonsai tree in a glass cube",
    "a tram in Lisbon, ukiyo-e",
    "a robot tending a vegetable garden",
    "an origami crane over mountains",
)


CALLBACK_DROP_RATE = 0.25


class _Display(Protocol):
    def add(self, index: int, prompt: str) -> None: ...
    def update(self, index: int, info: TaskInfo | None, note: str = "") -> None: ...
    def close(self) -> None: ...


class _PlainDisplay:
    """One line per change: for logs, pipes and terminals without rich."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self._total = total
        self._stream = stream
        self._prompts: dict[int, str] = {}

    def add(self, index: int, prompt: str) -> None:
        self._prompts[index] = prompt

    def update(self, index: int, info: TaskInfo | None, note: str = "") -> None:
        status = ""
        if info is not None:
            status = f"{info.id} {info.status.value or 'QUEUED':<11} {info.progress_text:>4}"
        line = f"[{index + 1}/{self._total}] {status} {note or self._prompts[index]!r}"
        print(line.rstrip(), file=self._stream, flush=True)

    def close(self) -> None:
        pass


class _RichDisplay:
    """One live progress bar per job (needs the `cli` extra)."""

    def __init__(self, total: int) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self._progress = Progress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]}"),
        )
        self._bars: dict[int, Any] = {}
        self._progress.start()

    def add(self, index: int, prompt: str) -> None:
        self._bars[index] = self._progress.add_task(prompt[:40], total=100, status="submitting")

    def update(self, index: int, info: TaskInfo | None, note: str = "") -> None:
        status = note or (info.status.value or "QUEUED" if info is not None else "")
        completed = info.progress if info is not None and info.progress is not None else None
        self._progress.update(self._bars[index], completed=completed, status=status)

    def close(self) -> None:
        self._progress.stop()


def _display(total: int, plain: bool, as_json: bool) -> _Display:
    """Rich bars on a terminal when rich is installed; plain lines otherwise (stderr with --json)."""
    if not (plain or as_json) and sys.stdout.isatty():
        try:
            return _RichDisplay(total)
        except ImportError:
            pass
    return _PlainDisplay(total, sys.stderr if as_json else sys.stdout)


async def _run_job(
    mj: Client,
    display: _Display,
    index: int,
    prompt: str,
    out: Path,
    *,
    timeout: float,
    upscale: int | None = None,
) -> dict[str, Any]:
    """One imagine (then, with `upscale`, its U<n>) with live progress; saves the final image."""
    record: dict[str, Any] = {"prompt": prompt}
    try:
        task = await mj.imagine(prompt)
        record["id"] = task.id
        info = await task.wait(timeout=timeout, on_progress=lambda i: display.update(index, i))
        if upscale is not None:
            display.update(index, info, f"U{upscale}")
            task = await task.upscale(upscale)
            record["upscale_id"] = task.id
            info = await task.wait(timeout=timeout, on_progress=lambda i: display.update(index, i))
        path = await mj.download(info, out / f"{index + 1:02d}-{task.id}.png", timeout=timeout)
        record.update(status="SUCCESS", image=str(path))
    except MjError as exc:
        record.update(status="ERROR", error=f"{type(exc).__name__}: {exc}")
        display.update(index, None, f"failed: {type(exc).__name__}")
    return record


async def _demo(jobs: int, out: Path, as_json: bool, plain: bool) -> int:
    from .testing import FakeProxy

    prompts = [DEMO_PROMPTS[i % len(DEMO_PROMPTS)] for i in range(jobs)]
    display = _display(jobs, plain, as_json)
    started = time.perf_counter()
    async with (
        FakeProxy(dialect="extended", job_seconds=2.0) as fake,
        Client(fake.url, fake.api_key, auth=fake.auth, poll_interval=1.0) as mj,
    ):
        # Results come by callback and by polling; the simulator loses a quarter of the
        # callbacks, as real servers do, and the poller picks those jobs up.
        fake.faults.callback_drop_rate = CALLBACK_DROP_RATE
        await mj.callbacks.serve("127.0.0.1", 0)
        for index, prompt in enumerate(prompts):
            display.add(index, prompt)
        try:
            results = await asyncio.gather(
                *(_run_job(mj, display, i, p, out, timeout=60) for i, p in enumerate(prompts))
            )
        finally:
            display.close()
        seconds = time.perf_counter() - started
        stats = mj.stats
        submits = sum(n for route, n in fake.stats.requests.items() if "/submit/" in route)
    figures = {
        "requests": stats.requests,
        "submits": submits,
        "retries": stats.retries,
        "by_callback": stats.resolved_by_callback,
        "by_polling": stats.resolved_by_poll,
    }
    detail = (
        f"{stats.requests} requests ({submits} submits), {stats.retries} retries; "
        f"results by callback {stats.resolved_by_callback}, by polling {stats.resolved_by_poll} "
        f"({CALLBACK_DROP_RATE:.0%} of callbacks dropped on purpose); "
    )
    return _report(results, seconds, out, as_json, figures=figures, detail=detail)


def _report(
    results: list[dict[str, Any]],
    seconds: float,
    out: Path,
    as_json: bool,
    *,
    figures: dict[str, Any] | None = None,
    detail: str = "",
) -> int:
    """Print a run's summary (JSON, or errors on stderr and one line); the exit code."""
    jobs = len(results)
    failed = sum(1 for r in results if r["status"] != "SUCCESS")
    if as_json:
        summary = {
            "jobs": jobs, "succeeded": jobs - failed, "failed": failed, "seconds": round(seconds, 2),
            **(figures or {}), "out": str(out), "tasks": results,
        }
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        for record in results:
            if record["status"] != "SUCCESS":
                print(f"error: {record['prompt']!r}: {record['error']}", file=sys.stderr)
        outcome = f"{jobs} jobs: {jobs - failed} succeeded, {failed} failed in {seconds:.1f} s"
        print(f"{outcome}; {detail}images in {out}/")
    return 1 if failed else 0


async def _imagine(
    prompts: Sequence[str], out: Path, *, upscale: int | None, auth: AuthStyle, timeout: float,
    as_json: bool, plain: bool,
) -> int:
    """The demo's flow against a real server: every prompt (at most 10 at a time), then its upscale."""
    display = _display(len(prompts), plain, as_json)
    started = time.perf_counter()
    limit = asyncio.Semaphore(DEFAULT_MAX_IN_FLIGHT)
    async with Client(auth=auth) as mj:

        async def run(index: int, prompt: str) -> dict[str, Any]:
            async with limit:
                return await _run_job(mj, display, index, prompt, out, timeout=timeout, upscale=upscale)

        for index, prompt in enumerate(prompts):
            display.add(index, prompt)
        try:
            results = await asyncio.gather(*(run(i, p) for i, p in enumerate(prompts)))
        finally:
            display.close()
    return _report(list(results), time.perf_counter() - started, out, as_json)


async def _describe(
    name: str, image: bytes, *, auth: AuthStyle, timeout: float, as_json: bool, plain: bool
) -> int:
    """Describe one image file and print the four prompts the server suggests."""
    display = _display(1, plain, as_json)
    display.add(0, name)
    async with Client(auth=auth) as mj:
        try:
            task = await mj.describe(image)
            info = await task.wait(timeout=timeout, on_progress=lambda i: display.update(0, i))
        except MjError as exc:
            display.update(0, None, f"failed: {type(exc).__name__}")
            print(f"error: {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        finally:
            display.close()
    prompts = [p.strip() for p in (info.final_prompt or "").split("\n\n") if p.strip()]
    if as_json:
        print(json.dumps({"id": info.id, "file": name, "prompts": prompts}, ensure_ascii=False, indent=2))
    else:
        print("\n".join(prompts))
    return 0


def _crash(jobs: int, kills: int, seed: int, as_json: bool) -> int:
    """`demo --crash`: the bot killed and restarted; the exit code says whether a job was lost or
    paid twice."""
    from ._crash_demo import crash_demo

    with tempfile.TemporaryDirectory(prefix="mjasync-crash-") as workdir:
        report = asyncio.run(crash_demo(jobs, kills, seed, Path(workdir)))
    if as_json:
        print(json.dumps(attrs.asdict(report), indent=2))
    else:
        print(
            f"{report.jobs} jobs by a bot with a SQLiteStore, killed (SIGKILL) "
            f"{len(report.killed_after)} times "
            f"(after {', '.join(map(str, report.killed_after))} results) and restarted, with 10% of submits "
            f"reset after recording and 10% answered 503: the server recorded {report.recorded} jobs; "
            f"{report.paid_twice} paid twice, {report.lost} lost, {report.redelivered} results handed over "
            f"again after a kill, in {report.seconds:.1f} s"
        )
    return 1 if report.paid_twice or report.lost else 0


async def _simulate(port: int, dialect: str, job_seconds: float) -> None:
    from .testing import serve

    await serve(port, dialect=dialect, job_seconds=job_seconds)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mjasync", description="Async SDK for Midjourney proxy APIs.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a batch of jobs on the embedded simulator (no network)")
    demo.add_argument("--jobs", type=int, help="how many imagine jobs (default 8; 150 with --crash)")
    demo.add_argument("--out", type=Path, default=Path("mjasync-demo"), help="where the PNGs go")
    demo.add_argument("--json", action="store_true", help="print a JSON summary instead of progress")
    demo.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    demo.add_argument(
        "--crash", action="store_true",
        help="instead, run a bot with a SQLiteStore, kill it (SIGKILL) mid-batch and restart it (POSIX)",
    )
    demo.add_argument("--kills", type=int, default=3, help="with --crash: how many kills (default 3)")
    demo.add_argument("--seed", type=int, default=1, help="with --crash: the kill moments' seed (default 1)")
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument(
        "--auth", choices=AUTH_STYLES, default=os.environ.get("MJASYNC_AUTH", "bearer"),
        help="how the key is sent (default: $MJASYNC_AUTH, else bearer)",
    )
    server.add_argument("--timeout", type=float, default=DEFAULT_WAIT_TIMEOUT, help="seconds per job (900)")
    server.add_argument("--json", action="store_true", help="print JSON instead of progress")
    server.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    imagine = commands.add_parser(
        "imagine", parents=[server], help="imagine jobs on $MJASYNC_BASE_URL with $MJASYNC_API_KEY"
    )
    imagine.add_argument("prompts", nargs="+", metavar="PROMPT")
    imagine.add_argument("--upscale", type=int, choices=range(1, 5), metavar="N", help="then upscale image N")
    imagine.add_argument("--out", type=Path, default=Path("."), help="where the PNGs go (default .)")
    describe = commands.add_parser("describe", parents=[server], help="four prompts that describe an image")
    describe.add_argument("file", type=Path, metavar="FILE")
    simulate = commands.add_parser("simulate", help="run the simulator on a local port until Ctrl-C")
    simulate.add_argument("--port", type=int, default=8080)
    simulate.add_argument("--dialect", choices=("reference", "extended", "relay"), default="reference")
    simulate.add_argument("--job-seconds", type=float, default=5.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            if args.crash:
                jobs = 150 if args.jobs is None else args.jobs
                if jobs < 20 or not 1 <= args.kills <= jobs // 2:
                    print("mjasync demo --crash: needs --jobs >= 20, 1 <= --kills <= jobs/2", file=sys.stderr)
                    return 2
                return _crash(jobs, args.kills, args.seed, args.json)
            jobs = 8 if args.jobs is None else args.jobs
            if jobs < 1:
                print("mjasync demo: --jobs must be at least 1", file=sys.stderr)
                return 2
            args.out.mkdir(parents=True, exist_ok=True)
            return asyncio.run(_demo(jobs, args.out, args.json, args.plain))
        if args.command == "imagine":
            return asyncio.run(
                _imagine(
                    args.prompts, args.out, upscale=args.upscale, auth=cast(AuthStyle, args.auth),
                    timeout=args.timeout, as_json=args.json, plain=args.plain,
                )
            )
        if args.command == "describe":
            image = args.file.read_bytes()
            return asyncio.run(
                _describe(
                    str(args.file), image, auth=cast(AuthStyle, args.auth), timeout=args.timeout,
                    as_json=args.json, plain=args.plain,
                )
            )
        asyncio.run(_simulate(args.port, args.dialect, args.job_seconds))
    except KeyboardInterrupt:
        return 130
    except (MjError, OSError) as exc:  # configuration (no base URL), an unreadable file
        print(f"mjasync {args.command}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
