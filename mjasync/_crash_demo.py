"""`mjasync demo --crash`: a bot process with a SQLiteStore, killed (SIGKILL) mid-batch and started
again, on the simulator with submit faults on; counts the jobs paid twice and the results lost.

The bot is this module run as a program (`python -m mjasync._crash_demo ...`).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import cast

import attrs

from ._client import Client
from ._exceptions import MjError, SubmitUncertainError
from ._sqlite_store import SQLiteStore
from ._task import Task
from ._transport import AuthStyle

__all__ = ["CrashReport", "crash_demo"]

STALL_SECONDS = 60.0
"""A bot run that hands over no result for this long has hung: the demo fails."""


@attrs.frozen
class CrashReport:
    jobs: int
    killed_after: list[int]
    """Results the bot had handed over when each kill came."""
    recorded: int
    """Jobs the simulator recorded (paid for)."""
    paid_twice: int
    lost: int
    """Jobs whose result never reached the bot."""
    redelivered: int
    """Results handed over again: the bot was killed after handling one and before forgetting it."""
    seconds: float


async def crash_demo(jobs: int, kills: int, seed: int, workdir: Path) -> CrashReport:
    """Run the bot until it has handled `jobs` messages, killing it `kills` times on the way."""
    from .testing import FakeProxy

    rng = random.Random(seed)
    db, journal = workdir / "bot.db", workdir / "journal.txt"
    started = time.perf_counter()
    async with FakeProxy("reference", job_seconds=0.3, seed=seed, queue_size=jobs + 100) as fake:
        fake.faults.add("reset_after_record", "submit", rate=0.1)  # the job exists, its answer is lost
        fake.faults.add("http_503", "submit", rate=0.1)  # a gateway error: recorded or not, nobody knows
        env = {**os.environ, "MJASYNC_API_KEY": fake.api_key or ""}
        args = ("-m", __name__, fake.url, fake.auth, str(db), str(journal), str(jobs))
        killed_after: list[int] = []
        for threshold in [*sorted(rng.sample(range(jobs // 10, jobs * 9 // 10), kills)), None]:
            bot = await asyncio.create_subprocess_exec(sys.executable, *args, env=env)
            try:
                while bot.returncode is None and (threshold is None or len(_delivered(journal)) < threshold):
                    await _progress(bot, journal)
                await asyncio.sleep(rng.random() * 0.3)  # inside a submit, a wait or a forget
                if bot.returncode is None:
                    killed_after.append(len(_delivered(journal)))
            finally:
                if bot.returncode is None:
                    bot.kill()
                await bot.wait()
            if bot.returncode == 0:
                break
            if len(killed_after) == 0 or bot.returncode != -signal.SIGKILL:
                raise RuntimeError(f"the bot exited with code {bot.returncode}")
        handed = Counter(_delivered(journal))
        prompts = Counter(job.prompt for job in fake.jobs.values())
    return CrashReport(
        jobs=jobs, killed_after=killed_after, recorded=len(fake.jobs),
        paid_twice=sum(n - 1 for n in prompts.values()), lost=jobs - len(handed),
        redelivered=sum(n - 1 for n in handed.values()), seconds=time.perf_counter() - started,
    )


async def _progress(bot: asyncio.subprocess.Process, journal: Path) -> None:
    """Wait until the bot hands over one more result or exits; raise when it stalls."""
    count = len(_delivered(journal))
    deadline = asyncio.get_running_loop().time() + STALL_SECONDS
    while len(_delivered(journal)) == count and bot.returncode is None:
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"the bot handed over no result for {STALL_SECONDS:.0f} s")
        await asyncio.sleep(0.01)


def _delivered(journal: Path) -> list[str]:
    """The message keys the bot reports handled, in order (a key twice: handed over again)."""
    text = journal.read_text() if journal.exists() else ""
    return [line.split()[1] for line in text.splitlines() if line.startswith("delivered ")]


# --- the bot (a separate process) ------------------------------------------------------------


async def _bot(url: str, auth: AuthStyle, db: str, journal: Path, count: int) -> None:
    """Handle the messages 0..count-1, each one paid job keyed by its message id: first what an
    earlier run left (`resume()`), then what is not handled yet. Handling a job means writing
    `delivered <key> <task id>` to the journal (flushed to disk), then forgetting it."""

    async def deliver(task: Task) -> None:
        info = await task.wait(timeout=120)
        with journal.open("a") as out:
            out.write(f"delivered {task.meta['key']} {info.id}\n")
            out.flush()
            os.fsync(out.fileno())
        await task.forget()

    async def submit(key: str) -> None:
        try:
            task = await mj.imagine(f"job {key}", idempotency_key=key, meta={"key": key})
        except SubmitUncertainError:
            return  # its record stays open: a later resume() settles it
        except MjError:
            return  # refused, so nothing was created: the next round sends it again
        following[key] = asyncio.create_task(deliver(task))

    following: dict[str, asyncio.Task[None]] = {}
    async with Client(
        url, auth=auth, store=SQLiteStore(db), replica="bot", poll_interval=0.05,
        reconcile_delays=(0.05, 0.1), resend_after=1.0, timeout=5.0, connect_timeout=1.0, retry_backoff=0.01,
    ) as mj:
        while True:
            for task in await mj.resume():
                following[str(task.meta["key"])] = asyncio.create_task(deliver(task))
            handled = set(_delivered(journal))
            todo = [key for key in map(str, range(count)) if key not in handled and key not in following]
            if not todo and all(job.done() for job in following.values()):
                return
            await asyncio.gather(*(submit(key) for key in todo[:40]))
            await asyncio.sleep(0.1)
            following = {key: job for key, job in following.items() if not job.done() or not job.exception()}


if __name__ == "__main__":
    url, auth, db, journal, count = sys.argv[1:]
    asyncio.run(_bot(url, cast(AuthStyle, auth), db, Path(journal), int(count)))
