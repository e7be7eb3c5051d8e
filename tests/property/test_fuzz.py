"""Property tests: whatever a server answers, mjasync returns or raises an MjError, nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mjasync
from mjasync._convert import structure, unstructure
from mjasync._transport import Transport
from tests.conftest import API_KEY, BASE_URL, FAST

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Near misses reach deeper than random JSON: the right keys with wrong or odd values.
task_like = st.fixed_dictionaries(
    {},
    optional={
        key: json_values | st.sampled_from(["", "0", "100%", "SUCCESS", "FAILURE", "MODAL", "mja-" + "a" * 32])
        for key in ("id", "status", "action", "progress", "state", "submitTime", "finishTime", "imageUrl",
                    "failReason", "buttons", "properties", "prompt")
    },
)
envelope_like = st.fixed_dictionaries(
    {},
    optional={"code": st.sampled_from([1, 3, 4, 9, 21, 22, 23, 24, -1, 5, 30]) | json_values,
              "description": json_values, "result": json_values, "properties": json_values,
              "success": st.booleans(), "message": json_values, "error": json_values},
)
bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | task_like.map(lambda v: json.dumps(v).encode())
    | st.lists(task_like, max_size=3).map(lambda v: json.dumps(v).encode())
    | envelope_like.map(lambda v: json.dumps(v).encode())
)
statuses = st.sampled_from([200, 200, 200, 204, 400, 401, 403, 404, 405, 408, 413, 429, 500, 502, 503])

Call = Callable[[mjasync.Client], Awaitable[Any]]
CALLS: dict[str, Call] = {
    "imagine": lambda mj: mj.imagine("cat"),
    "fetch": lambda mj: mj.fetch("1730621718151844"),
    "fetch_many": lambda mj: mj.fetch_many(["1", "2"]),
    "wait": lambda mj: mj.task("1").wait(timeout=0.02),
}


def answer_with(status: int, raw: bytes) -> Callable[..., Awaitable[tuple[int, bytes, float | None]]]:
    async def send(self: Transport, *args: Any, **kwargs: Any) -> tuple[int, bytes, float | None]:
        self.stats.requests += 1
        await asyncio.sleep(0)
        return status, raw, None

    return send


@pytest.mark.parametrize("call", list(CALLS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=statuses, raw=bodies)
def test_any_answer_gives_a_result_or_an_mj_error(
    monkeypatch: pytest.MonkeyPatch, call: str, status: int, raw: bytes
) -> None:
    monkeypatch.setattr(Transport, "_send", answer_with(status, raw))

    async def scenario() -> None:
        async with mjasync.Client(BASE_URL, API_KEY, **{**FAST, "reconcile_delays": (0.0,), "missing_after": 0.005, "poll_interval": 0.002}) as mj:
            try:
                await CALLS[call](mj)
            except mjasync.MjError as exc:
                str(exc), repr(exc)  # messages build for any input

    asyncio.run(scenario())


@settings(max_examples=300, deadline=None)
@given(raw=bodies, good_token=st.booleans())
def test_any_callback_body_is_taken_or_refused_with_invalid_callback_error(raw: bytes, good_token: bool) -> None:
    async def scenario() -> None:
        async with mjasync.Client(BASE_URL, API_KEY) as mj:
            mj.callbacks.configure("https://bot.example/hooks")
            token = (mj.callbacks.hook_url or "").rsplit("/", 1)[1] if good_token else "nope"
            with contextlib.suppress(mjasync.InvalidCallbackError):
                await mj.callbacks.deliver(raw, token)

    asyncio.run(scenario())


epoch_ms = st.integers(min_value=1, max_value=4_102_444_800_000).map(
    lambda ms: datetime.fromtimestamp(ms / 1000, tz=UTC)
)
texts = st.text(min_size=1, max_size=20)
buttons = st.builds(
    mjasync.Button, custom_id=texts, emoji=st.text(max_size=3), label=st.text(max_size=5),
    type=st.integers(0, 5), style=st.integers(0, 5),
    extra=st.dictionaries(st.sampled_from(["x1", "x2"]), json_values, max_size=2),
)
task_infos = st.builds(
    mjasync.TaskInfo,
    id=st.from_regex(r"[0-9]{1,18}", fullmatch=True),
    action=st.sampled_from(list(mjasync.TaskAction)) | texts.map(mjasync.TaskAction),
    status=st.sampled_from(list(mjasync.TaskStatus)) | texts.map(mjasync.TaskStatus),
    prompt=st.none() | texts, prompt_en=st.none() | texts, description=st.none() | texts,
    state=st.none() | texts, state_tag=st.none() | st.from_regex(r"mja-[0-9a-f]{32}", fullmatch=True),
    submit_time=st.none() | epoch_ms, start_time=st.none() | epoch_ms, finish_time=st.none() | epoch_ms,
    progress_text=st.sampled_from(["", "0%", "46%", "100%", "Waiting to start"]),
    image_url=st.none() | texts, fail_reason=st.none() | texts,
    buttons=st.lists(buttons, max_size=3).map(tuple),
    properties=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    extra=st.dictionaries(st.sampled_from(["isCompleted", "seed", "imageUrls", "cost"]), json_values, max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(info=task_infos)
def test_task_info_round_trips_through_the_wire_form(info: mjasync.TaskInfo) -> None:
    wire = json.loads(json.dumps(unstructure(info)))
    again = structure(wire, mjasync.TaskInfo)
    assert again == info


@settings(max_examples=300, deadline=None)
@given(value=json_values | task_like)
def test_structuring_any_json_raises_only_expected_errors(value: Any) -> None:
    import cattrs

    with contextlib.suppress(cattrs.BaseValidationError, TypeError, ValueError):
        structure(value, mjasync.TaskInfo)
