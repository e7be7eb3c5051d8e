"""Task reads over the transport, shared by the Client and its poller."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from urllib.parse import quote

from ._classify import endpoint_missing
from ._decode import task_list, task_or_none
from ._exceptions import APIError, TaskNotFoundError
from ._models import TaskInfo
from ._transport import Transport

__all__ = ["Reader"]

MISSING_ANSWERS: Final = 3
"""Consecutive 404/405 answers of list-by-condition before the reader gives it up for per-id
fetches for good: one odd page (a WAF's, a gateway's mid-restart) proves nothing."""


class Reader:
    """Reads tasks by id: many at once through list-by-condition while the server has it, else
    one fetch each. The poller's reads go without retries: its next tick is the retry."""

    def __init__(self, transport: Transport, *, batch_size: int) -> None:
        self._transport = transport
        self.batch_size = batch_size
        """Ids per list-by-condition call."""
        self.batched = True
        """False once the server showed, MISSING_ANSWERS times in a row, that it has no
        list-by-condition endpoint."""
        self._missing_streak = 0

    async def fetch(self, task_id: str, *, timeout: float | None = None) -> TaskInfo:
        """One status lookup with READ retries; TaskNotFoundError when the server does not know it."""
        info = await self._transport.request("GET", _fetch_path(task_id), task_or_none, timeout=timeout)
        if info is None:
            raise TaskNotFoundError(
                f"GET /mj/task/{{id}}/fetch: the server does not know task {task_id}",
                code=None, method="GET", path="/mj/task/{id}/fetch",
            )
        return info

    async def fetch_many(self, ids: Sequence[str], *, timeout: float | None = None) -> list[TaskInfo]:
        """The tasks of `ids` the server knows, in the order asked, in chunks of `batch_size`."""
        found: dict[str, TaskInfo] = {}
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start : start + self.batch_size]
            if self.batched:
                try:
                    infos = await self.list_by_ids(chunk, timeout=timeout, retries=None)
                    found.update((info.id, info) for info in infos)
                    continue
                except APIError as exc:
                    if not endpoint_missing(exc):
                        raise
            for task_id in chunk:
                info = await self.fetch_or_none(task_id, timeout=timeout, retries=None)
                if info is not None:
                    found[task_id] = info
        return [found[i] for i in ids if i in found]

    async def list_by_ids(
        self, ids: Sequence[str], *, timeout: float | None = None, retries: int | None = 0
    ) -> list[TaskInfo]:
        """The tasks of `ids` the server knows, in one list-by-condition call."""
        wanted = set(ids)
        try:
            tasks = await self._transport.request(
                "POST", "/mj/task/list-by-condition", task_list,
                body={"ids": list(ids)}, timeout=timeout, retries=retries,
            )
        except APIError as exc:
            if endpoint_missing(exc):
                self._missing_streak += 1
                self.batched = self.batched and self._missing_streak < MISSING_ANSWERS
            raise
        self._missing_streak = 0
        return [info for info in tasks if info.id in wanted]

    async def fetch_or_none(
        self, task_id: str, *, timeout: float | None = None, retries: int | None = 0
    ) -> TaskInfo | None:
        """One fetch; None when the server does not know the id."""
        try:
            return await self._transport.request(
                "GET", _fetch_path(task_id), task_or_none, timeout=timeout, retries=retries
            )
        except TaskNotFoundError:
            return None


def _fetch_path(task_id: str) -> str:
    return f"/mj/task/{quote(task_id, safe='')}/fetch"
