"""`imagine_many`: a bounded number of jobs in flight, queue-full backoff, results as they finish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final

import attrs

from ._exceptions import MjError
from ._logging import logger
from ._models import TaskInfo
from ._retry import backoff_wait, retrying, server_full
from ._stats import ClientStats

if TYPE_CHECKING:
    from ._task import Task

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "BatchResult", "run_batch"]

DEFAULT_MAX_IN_FLIGHT: Final = 10
"""Jobs `imagine_many` keeps submitted but unfinished by default (an account runs 3 and queues 10)."""


@attrs.frozen
class BatchResult:
    """One prompt's outcome in `Client.imagine_many`: the final snapshot, or the error it ended with."""

    index: int
    """The prompt's position in the input."""
    prompt: str
    info: TaskInfo | None = None
    """The SUCCESS snapshot; None when `error` is set."""
    error: MjError | None = attrs.field(default=None, eq=False)
    """TaskFailedError, WaitTimeoutError, SubmitUncertainError, ...; None on success."""
    task_id: str | None = None
    """The accepted job's id; None when no job was accepted."""

    @property
    def succeeded(self) -> bool:
        return self.info is not None and self.error is None


class _Gate:
    """How many of a batch's jobs may be in flight (submitting, or accepted and unfinished).

    At most `maximum`; a queue-full answer cuts the limit to what the server holds for us now,
    and a job the server started at once (code 1, no queue position) raises it by one again.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = self.limit = maximum
        self.in_flight = 0
        self._changed = asyncio.Condition()

    async def enter(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1

    async def leave(self, *, refused: bool = False) -> None:
        async with self._changed:
            self.in_flight -= 1
            if refused:
                self.limit = max(1, min(self.limit, self.in_flight))
            self._changed.notify()

    async def grow(self) -> None:
        async with self._changed:
            if self.limit < self.maximum:
                self.limit += 1
                self._changed.notify()


async def run_batch(
    prompts: Sequence[str],
    submit: Callable[[str], Awaitable[Task]],
    *,
    max_in_flight: int,
    timeout: float | None,
    backoff: float,
    stats: ClientStats,
) -> AsyncGenerator[BatchResult, None]:
    """Yield one BatchResult per prompt as each job ends, with at most `max_in_flight` jobs
    submitted but unfinished. Closing the generator stops submitting and cancels every wait."""
    loop = asyncio.get_running_loop()
    queue_full_wait = backoff_wait(backoff, fixed=backoff)
    gate = _Gate(max_in_flight)

    async def enter_and_submit(prompt: str) -> Task:
        """Take a place at the gate and submit; a refusal gives the place back (and cuts the limit)."""
        await gate.enter()
        try:
            task = await submit(prompt)
        except BaseException as exc:
            await gate.leave(refused=server_full(exc))
            raise
        accepted = task.submit_result
        if accepted is not None and accepted.code == 1 and accepted.queue_position is None:
            await gate.grow()
        return task

    async def submit_when_room(prompt: str, deadline: float | None) -> Task:
        """Submit; while the server is full (nothing created), wait and submit the same prompt again."""
        remaining = None if deadline is None else deadline - loop.time()
        controller = retrying(server_full, wait=queue_full_wait, deadline=remaining, stats=stats)
        return await controller(enter_and_submit, prompt)

    unreported: dict[int, Task] = {}
    """Accepted jobs whose result was not yielded yet: reported if the batch closes first."""

    async def one(index: int, prompt: str) -> BatchResult:
        deadline = None if timeout is None else loop.time() + timeout
        try:
            task = await submit_when_room(prompt, deadline)
        except MjError as exc:
            return BatchResult(index, prompt, error=exc)
        unreported[index] = task
        try:
            info = await task.wait(timeout=None if deadline is None else max(0.0, deadline - loop.time()))
            return BatchResult(index, prompt, info=info, task_id=task.id)
        except MjError as exc:
            return BatchResult(index, prompt, error=exc, task_id=task.id)
        finally:
            await gate.leave()

    pending = iter(enumerate(prompts))  # shared by the workers: each prompt is taken exactly once
    results: asyncio.Queue[BatchResult | Exception] = asyncio.Queue()

    async def worker() -> None:
        try:
            for index, prompt in pending:
                await results.put(await one(index, prompt))
        except Exception as exc:  # not an MjError: a bug the consumer must see
            await results.put(exc)

    workers = [loop.create_task(worker()) for _ in range(min(max_in_flight, len(prompts)))]
    try:
        for _ in prompts:
            item = await results.get()
            if isinstance(item, Exception):
                raise item
            unreported.pop(item.index, None)
            yield item
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for index, job in sorted(unreported.items()):
            logger.warning(
                "imagine_many closed: task %s (prompt %d) was accepted and not reported; it goes on",
                job.id, index, extra={"task_id": job.id},
            )
