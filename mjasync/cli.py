"""The `mjasync` command: `demo` (offline, on the simulator) and `simulate` (a standalone fake)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

from ._client import Client
from ._exceptions import MjError
from ._models import TaskInfo

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


async def _demo(jobs: int, out: Path, as_json: bool, plain: bool) -> int:
    from .testing import FakeProxy

    prompts = [DEMO_PROMPTS[i % len(DEMO_PROMPTS)] for i in range(jobs)]
    display = _display(jobs, plain, as_json)
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    async with (
        FakeProxy(dialect="extended", job_seconds=2.0) as fake,
        Client(fake.url, fake.api_key, auth=fake.auth, poll_interval=1.0) as mj,
    ):
        # Results come by callback and by polling; the simulator loses a quarter of the
        # callbacks, as real servers do, and the poller picks those jobs up.
        fake.faults.callback_drop_rate = CALLBACK_DROP_RATE
        await mj.callbacks.serve("127.0.0.1", 0)

        async def run(index: int, prompt: str) -> None:
            record: dict[str, Any] = {"prompt": prompt}
            results.append(record)
            try:
                task = await mj.imagine(prompt)
                record["id"] = task.id
                info = await task.wait(timeout=60, on_progress=lambda i: display.update(index, i))
                path = out / f"{index + 1:02d}-{task.id}.png"
                path.write_bytes(await mj.read_image(info))
                record.update(status="SUCCESS", image=str(path))
            except MjError as exc:
                record.update(status="ERROR", error=f"{type(exc).__name__}: {exc}")
                display.update(index, None, f"failed: {type(exc).__name__}")

        for index, prompt in enumerate(prompts):
            display.add(index, prompt)
        try:
            await asyncio.gather(*(run(i, p) for i, p in enumerate(prompts)))
        finally:
            display.close()
        seconds = time.perf_counter() - started
        stats = mj.stats
        submits = sum(n for route, n in fake.stats.requests.items() if "/submit/" in route)
    failed = sum(1 for r in results if r["status"] != "SUCCESS")
    summary = {
        "jobs": jobs,
        "succeeded": jobs - failed,
        "failed": failed,
        "seconds": round(seconds, 2),
        "requests": stats.requests,
        "submits": submits,
        "retries": stats.retries,
        "by_callback": stats.resolved_by_callback,
        "by_polling": stats.resolved_by_poll,
        "out": str(out),
        "tasks": results,
    }
    if as_json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        for record in results:
            if record["status"] != "SUCCESS":
                print(f"error: {record['prompt']!r}: {record['error']}", file=sys.stderr)
        print(
            f"{jobs} jobs: {jobs - failed} succeeded, {failed} failed in {seconds:.1f} s; "
            f"{stats.requests} requests ({submits} submits), {stats.retries} retries; "
            f"results by callback {stats.resolved_by_callback}, by polling {stats.resolved_by_poll} "
            f"({CALLBACK_DROP_RATE:.0%} of callbacks dropped on purpose); images in {out}/"
        )
    return 1 if failed else 0


async def _simulate(port: int, dialect: str, job_seconds: float) -> None:
    from .testing import serve

    await serve(port, dialect=dialect, job_seconds=job_seconds)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mjasync", description="Async SDK for Midjourney proxy APIs.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a batch of jobs on the embedded simulator (no network)")
    demo.add_argument("--jobs", type=int, default=8, help="how many imagine jobs (default 8)")
    demo.add_argument("--out", type=Path, default=Path("mjasync-demo"), help="where the PNGs go")
    demo.add_argument("--json", action="store_true", help="print a JSON summary instead of progress")
    demo.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    simulate = commands.add_parser("simulate", help="run the simulator on a local port until Ctrl-C")
    simulate.add_argument("--port", type=int, default=8080)
    simulate.add_argument("--dialect", choices=("reference", "extended", "relay"), default="reference")
    simulate.add_argument("--job-seconds", type=float, default=5.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            if args.jobs < 1:
                print("mjasync demo: --jobs must be at least 1", file=sys.stderr)
                return 2
            args.out.mkdir(parents=True, exist_ok=True)
            return asyncio.run(_demo(args.jobs, args.out, args.json, args.plain))
        asyncio.run(_simulate(args.port, args.dialect, args.job_seconds))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
