"""Tag look-ups, batched: every tag asked for while a round runs shares the next round's views."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Literal

from ._classify import endpoint_missing
from ._decode import tags_view
from ._exceptions import APIError, ClientClosedError
from ._models import TaskInfo
from ._transport import Transport

__all__ = ["Lookups", "ReconcileStrategy", "Sighting"]

ReconcileStrategy = Literal["auto", "plus-query", "list-scan", "none"]
Sighting = tuple[list[TaskInfo], bool]
"""The tasks carrying one tag, and whether the views searched were complete (they provably
hold every task that could carry it)."""
_LISTS = ("/mj/task/list", "/mj/task/queue")


class Lookups:
    """Finds tasks by state tag. A round starts once the one before it ended and serves every tag
    asked for meanwhile, so N open tags (a storm of resets, or `resume()` after a crash) cost one
    scan of the task list and queue a round, not N. The plus server's query matches one `state`
    exactly, so there each tag is still one (indexed) query."""

    def __init__(self, transport: Transport, strategy: ReconcileStrategy) -> None:
        self._transport = transport
        self._strategy = strategy
        self._mode: ReconcileStrategy | None = None if strategy == "auto" else strategy
        """The look-up this server answers; None until the first round finds out."""
        self._next: tuple[dict[str, str], asyncio.Task[Mapping[str, Sighting]]] | None = None
        """The round gathering tags (tag -> wire state sent), not started yet."""
        self._rounds: set[asyncio.Task[Mapping[str, Sighting]]] = set()

    @property
    def enabled(self) -> bool:
        return self._mode != "none"

    async def find(self, tag: str, wire_state: str) -> Sighting:
        """The tasks carrying `tag`, in views read after this call (never an earlier answer)."""
        if self._next is None:
            tags: dict[str, str] = {}
            previous = set(self._rounds)
            outcome = asyncio.get_running_loop().create_task(self._round(tags, previous))
            outcome.add_done_callback(_retrieve)
            outcome.add_done_callback(self._rounds.discard)
            self._rounds.add(outcome)
            self._next = (tags, outcome)
        tags, outcome = self._next
        tags[tag] = wire_state
        try:
            sightings = await asyncio.shield(outcome)  # one caller gone does not end the round
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if outcome.cancelled() and current is not None and not current.cancelling():
                raise ClientClosedError("the Client was closed during a look-up") from None
            raise
        return sightings.get(tag, ([], False))

    async def close(self) -> None:
        """Stop the rounds under way; their callers get ClientClosedError."""
        for outcome in self._rounds:
            outcome.cancel()
        await asyncio.gather(*self._rounds, return_exceptions=True)

    async def _round(
        self, tags: dict[str, str], previous: set[asyncio.Task[Mapping[str, Sighting]]]
    ) -> Mapping[str, Sighting]:
        if previous:
            await asyncio.wait(previous)
        await asyncio.sleep(0)  # the tags asked for in this loop turn join too
        self._next = None
        return await self._search(tags)

    async def _search(self, tags: Mapping[str, str]) -> Mapping[str, Sighting]:
        """Every tag's sighting; a tag left out was not seen in a complete view."""
        todo = dict(tags)
        found: dict[str, Sighting] = {}
        if self._mode is None:  # one tag first, to learn which look-up this server answers
            tag, state = todo.popitem()
            probe = await self._query(tag, state)
            if probe is None:
                self._mode = "list-scan"
                todo[tag] = state
            else:
                found[tag] = probe
        if self._mode == "plus-query":
            answers = await asyncio.gather(*(self._query(tag, state) for tag, state in todo.items()))
            found.update((tag, seen) for tag, seen in zip(todo, answers, strict=True) if seen is not None)
        elif self._mode == "list-scan":
            found.update(await self._scan(frozenset(todo)))
        return found

    async def _query(self, tag: str, wire_state: str) -> Sighting | None:
        """The plus query for one tag; None when the server lacks it."""
        try:
            # The plus query matches `state` exactly: ask for the whole wire state sent.
            tagged, complete = await self._transport.request(
                "POST", "/mj/task/query", tags_view(frozenset((tag,))), body={"state": wire_state}
            )
        except APIError as exc:
            return None if endpoint_missing(exc) and self._strategy == "auto" else ([], False)
        self._mode = "plus-query"
        return tagged.get(tag, []), complete

    async def _scan(self, tags: frozenset[str]) -> Mapping[str, Sighting]:
        """One read of the task list and of the queue for every tag of the round."""
        found: dict[str, dict[str, TaskInfo]] = {tag: {} for tag in tags}
        complete_views = views = 0
        for path in _LISTS:
            try:
                tagged, complete = await self._transport.request("GET", path, tags_view(tags))
            except APIError as exc:
                if not endpoint_missing(exc):
                    return {tag: (list(seen.values()), False) for tag, seen in found.items()}
                continue
            views += 1
            complete_views += complete
            for tag, tasks in tagged.items():
                found[tag].update((task.id, task) for task in tasks)
        if views == 0 and self._strategy == "auto":
            self._mode = "none"
        return {tag: (list(seen.values()), complete_views == len(_LISTS)) for tag, seen in found.items()}


def _retrieve(outcome: asyncio.Task[Mapping[str, Sighting]]) -> None:
    """Mark a round's error seen: every caller of that round may have gone."""
    if not outcome.cancelled():
        outcome.exception()
