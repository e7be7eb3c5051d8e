"""Import time of `import mjasync` vs `import aiohttp`, each in fresh interpreters.

Each module is imported in a new `python -X importtime -c "import X"` process, alternating, 10
times each after one untimed warm-up that writes the byte-code caches (`--quick`: 5); the caches
go to a temporary PYTHONPYCACHEPREFIX tree. The main figures are the medians of the
top-level cumulative import time that `-X importtime` reports (interpreter start-up excluded)
and their ratio (target <= 1.3x). The wall time of whole `python -c "import X"` processes
(start-up included) is reported too, with a bare `python -c pass` as the baseline. Comment lines
list what mjasync imports beyond aiohttp's modules, by package and by module (median self time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping

from _common import BenchError, Targets, figure, note, run

MODULES = ("aiohttp", "mjasync")


def import_times(module: str, env: Mapping[str, str]) -> dict[str, tuple[int, int]]:
    """(self, cumulative) microseconds per module that `import module` loads, from -X importtime;
    the key "<total>" holds the top-level line."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        raise BenchError(f"import {module} failed: {proc.stderr.strip()[-500:]}")
    times: dict[str, tuple[int, int]] = {}
    for line in proc.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            times[parts[2].strip()] = (int(parts[0]), int(parts[1]))
            if parts[2] == f" {module}":  # top level: one space of indentation
                times["<total>"] = (int(parts[0]), int(parts[1]))
    if "<total>" not in times:
        raise BenchError(f"no top-level line for {module} in -X importtime output")
    return times


def wall_ms(code: str, env: Mapping[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True, env=env)
    return (time.perf_counter() - start) * 1000


def main_sync(args: argparse.Namespace) -> None:
    repeats = 5 if args.quick else 10
    with tempfile.TemporaryDirectory(prefix="mjasync-bench-pycache-") as cache:
        # Byte-code caches in a private tree: both sides import from .pyc files (as an installed
        # package does) even where PYTHONDONTWRITEBYTECODE is set, and nothing is written into
        # the source tree.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        measure(repeats, env)


def measure(repeats: int, env: Mapping[str, str]) -> None:
    for module in MODULES:  # warm-up: byte-compile, fill the page cache
        import_times(module, env)
    traces: dict[str, list[dict[str, tuple[int, int]]]] = defaultdict(list)
    walls: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        for module in MODULES:
            traces[module].append(import_times(module, env))
            walls[module].append(wall_ms(f"import {module}", env))
        walls["python"].append(wall_ms("pass", env))
    total = {m: statistics.median(t["<total>"][1] for t in traces[m]) / 1000 for m in MODULES}
    wall = {k: statistics.median(v) for k, v in walls.items()}
    targets = Targets()
    figure("import.aiohttp", total["aiohttp"], "ms")
    figure("import.mjasync", total["mjasync"], "ms")
    figure("import.ratio", total["mjasync"] / total["aiohttp"], "x")
    figure("import.wall_python", wall["python"], "ms")
    figure("import.wall_aiohttp", wall["aiohttp"], "ms")
    figure("import.wall_mjasync", wall["mjasync"], "ms")
    figure("import.wall_ratio", wall["mjasync"] / wall["aiohttp"], "x")
    # What mjasync adds: self time of the modules aiohttp does not import, by package and by module.
    base = set().union(*(t.keys() for t in traces["aiohttp"])) | {"<total>"}
    packages: dict[str, list[float]] = defaultdict(list)
    modules: dict[str, list[float]] = defaultdict(list)
    for trace in traces["mjasync"]:
        per_package: dict[str, float] = defaultdict(float)
        for name, (own, _) in trace.items():
            if name not in base:
                per_package[name.split(".")[0]] += own / 1000
                modules[name].append(own / 1000)
        for package, ms in per_package.items():
            packages[package].append(ms)
    for package, samples in sorted(packages.items(), key=lambda item: -statistics.median(item[1]))[:8]:
        note(f"extra package {statistics.median(samples):6.2f} ms self  {package}")
    for name, samples in sorted(modules.items(), key=lambda item: -statistics.median(item[1]))[:12]:
        note(f"extra module  {statistics.median(samples):6.2f} ms self  {name}")
    targets.check("import.ratio", total["mjasync"] / total["aiohttp"], "<=", 1.3)
    targets.finish()


async def main(args: argparse.Namespace) -> None:
    main_sync(args)


if __name__ == "__main__":
    run(main, __doc__)
