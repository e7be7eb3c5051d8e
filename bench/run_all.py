"""Run every benchmark and print one markdown table of their figures, targets and results.

`python bench/run_all.py [--quick] [--write docs/performance.md]`: each script runs in its
own process (with `--quick` when given); their `name value unit` lines become table rows, their
`# target:` / `# also:` lines the target and result columns. Exits 1 when a script is broken
(exits non-zero), never on a missed target.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = (
    "submit_throughput.py",
    "fetch_throughput.py",
    "polling_cost.py",
    "callback_latency.py",
    "replica_latency.py",
    "memory.py",
    "import_time.py",
)
FIGURE = re.compile(r"^(\S+) (-?[0-9.]+(?:e[-+]?\d+)?) (\S+)$")
START, END = "<!-- bench:table -->", "<!-- /bench:table -->"
TARGET = re.compile(r"^# (target|also): (\S+) (<=|>=|<|>) (\S+) -> (PASS|MISS)(?: \((.*)\))?$")


@dataclass
class Row:
    name: str
    value: str
    unit: str
    targets: list[str] = field(default_factory=list)
    results: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    script: str
    seconds: float
    code: int
    verdict: str
    rows: list[Row]


def run_script(script: str, quick: bool) -> Outcome:
    command = [sys.executable, str(BENCH / script), *(["--quick"] if quick else [])]
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, out, err = -1, str(exc.stdout or ""), "timed out after 1800 s"
    seconds = time.perf_counter() - start
    rows: dict[str, Row] = {}
    lines = out.splitlines()
    for line in lines:
        if match := FIGURE.match(line):
            rows[match[1]] = Row(match[1], match[2], match[3])
        elif (match := TARGET.match(line)) and match[2] in rows:
            why = f" ({match[6]})" if match[6] else ""
            rows[match[2]].targets.append(f"{match[3]} {match[4]}{why}")
            rows[match[2]].results.append(match[5])
    verdict = lines[-1].strip() if lines and lines[-1].strip() in ("PASS", "MISS") else "?"
    if code != 0:
        verdict = f"BROKEN (exit {code})"
        print(err.strip()[-2000:], file=sys.stderr)
    return Outcome(script, seconds, code, verdict, list(rows.values()))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def table(outcomes: list[Outcome], quick: bool, load: float) -> str:
    lines = [
        f"Machine: Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"load average {load:.2f} at the start.",
        f"Command: `python bench/run_all.py{' --quick' if quick else ''}`.",
        "",
        "| figure | value | unit | target | result |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for outcome in outcomes:
        for row in outcome.rows:
            target = "; ".join(row.targets)
            result = "; ".join(row.results)
            lines.append(f"| {row.name} | {row.value} | {row.unit} | {target} | {result} |")
        lines.append(f"| **{outcome.script}** ({outcome.seconds:.0f} s) | | | | **{outcome.verdict}** |")
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    """Put the table between the START/END markers of `path` (docs/performance.md has them), or
    write it as the whole file when there are none."""
    old = path.read_text() if path.exists() else ""
    if START in old and END in old:
        head, rest = old.split(START, 1)
        text = f"{head}{START}\n{text}{END}{rest.split(END, 1)[1]}"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="run every script with --quick")
    parser.add_argument("--write", metavar="PATH", help="also write the table to PATH")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    outcomes = []
    for script in SCRIPTS:
        print(f"running {script} ...", file=sys.stderr, flush=True)
        outcome = run_script(script, args.quick)
        print(f"  {outcome.verdict} in {outcome.seconds:.1f} s", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    text = table(outcomes, args.quick, load)
    print(text, end="")
    if args.write:
        write(Path(args.write), text)
        print(f"wrote {args.write}", file=sys.stderr)
    sys.exit(1 if any(o.code != 0 for o in outcomes) else 0)


if __name__ == "__main__":
    main()
