"""Client configuration, request building, input validation and secret hygiene."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import aiohttp
import attrs
import pytest

import mjasync
from mjasync._options import Overrides
from tests.conftest import API_KEY, BASE_URL, FAST, MockedHTTP

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
ACCEPTED = {"code": 1, "description": "ok", "result": "1"}


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [("bearer", "Authorization", f"Bearer {API_KEY}"), ("authorization", "Authorization", API_KEY),
     ("mj-api-secret", "mj-api-secret", API_KEY)],
)
async def test_auth_styles(http: MockedHTTP, auth: mjasync.AuthStyle, header: str, value: str) -> None:
    http.post(BASE_URL + "/mj/submit/imagine", payload=ACCEPTED)
    async with mjasync.Client(BASE_URL, API_KEY, auth=auth, **FAST) as mj:
        await mj.imagine("cat")
    (call,) = http.calls("POST", "/mj/submit/imagine")
    assert call.kwargs["headers"][header] == value


async def test_no_key_sends_no_auth_header(http: MockedHTTP) -> None:
    http.get(BASE_URL + "/mj/task/1/fetch", payload={"id": "1"})
    async with mjasync.Client(BASE_URL, **FAST) as mj:
        await mj.fetch("1")
    (call,) = http.calls("GET", "/mj/task/1/fetch")
    assert "Authorization" not in call.kwargs["headers"] and "mj-api-secret" not in call.kwargs["headers"]


@pytest.mark.parametrize(
    ("base_url", "mode", "url"),
    [
        ("http://proxy.test", "fast", "http://proxy.test/mj-fast/mj/task/1/fetch"),
        ("http://proxy.test/", "relax", "http://proxy.test/mj-relax/mj/task/1/fetch"),
        ("http://proxy.test/api/v1", None, "http://proxy.test/api/v1/mj/task/1/fetch"),
        ("http://proxy.test", "fast-lane", "http://proxy.test/fast-lane/mj/task/1/fetch"),
    ],
)
async def test_base_url_path_and_mode_prefix(http: MockedHTTP, base_url: str, mode: str | None, url: str) -> None:
    http.get(url, payload={"id": "1"})
    async with mjasync.Client(base_url, API_KEY, mode=mode, **FAST) as mj:
        assert (await mj.fetch("1")).id == "1"


async def test_env_configuration(http: MockedHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MJASYNC_BASE_URL", BASE_URL)
    monkeypatch.setenv("MJASYNC_API_KEY", API_KEY)
    http.get(BASE_URL + "/mj/task/1/fetch", payload={"id": "1"})
    async with mjasync.Client(**FAST) as mj:
        await mj.fetch("1")
    (call,) = http.calls("GET", "/mj/task/1/fetch")
    assert call.kwargs["headers"]["Authorization"] == f"Bearer {API_KEY}"


def test_missing_base_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MJASYNC_BASE_URL", raising=False)
    with pytest.raises(mjasync.InvalidRequestError, match="MJASYNC_BASE_URL"):
        mjasync.Client()


def test_client_is_built_without_a_running_loop() -> None:
    mj = mjasync.Client(BASE_URL, API_KEY)
    assert mj.base_url == BASE_URL


async def test_per_call_timeout_reaches_aiohttp(http: MockedHTTP, client: mjasync.Client) -> None:
    http.get(BASE_URL + "/mj/task/1/fetch", payload={"id": "1"})
    await client.fetch("1", timeout=1.5)
    (call,) = http.calls("GET", "/mj/task/1/fetch")
    assert call.kwargs["timeout"].total == 1.5
    assert call.kwargs["timeout"].connect == FAST["connect_timeout"]


async def test_images_and_extra_body_are_sent(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(BASE_URL + "/mj/submit/imagine", payload=ACCEPTED)
    b64 = base64.b64encode(PNG).decode()
    await client.imagine(
        "cat", bot_type="NIJI_JOURNEY", images=[b64, "data:image/jpeg;base64," + b64, PNG],
        notify_hook="https://hooks.example/x", extra_body={"noStorage": True},
    )
    body = json.loads(http.calls("POST", "/mj/submit/imagine")[0].kwargs["data"])
    assert body["base64Array"] == ["data:image/png;base64," + b64, "data:image/jpeg;base64," + b64,
                                   "data:image/png;base64," + b64]
    assert body["botType"] == "NIJI_JOURNEY"
    assert body["notifyHook"] == "https://hooks.example/x"
    assert body["noStorage"] is True


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prompt": ""},
        {"prompt": "   \n"},
        {"prompt": "cat", "bot_type": "DALL_E"},
        {"prompt": "cat", "images": ["not base64!"]},
        {"prompt": "cat", "images": ["data:image/png;base64,@@@"]},
        {"prompt": "cat", "images": "aGVsbG8="},
        {"prompt": "cat", "timeout": -1},
        {"prompt": "cat", "timeout": float("nan")},
        {"prompt": "cat", "state": "x" * 300},
        {"prompt": "cat", "notify_hook": "ftp://nope"},
        {"prompt": "cat", "extra_body": {"state": "mine"}},
    ],
)
async def test_bad_input_raises_before_any_request(http: MockedHTTP, client: mjasync.Client, kwargs: dict[str, Any]) -> None:
    with pytest.raises(mjasync.InvalidRequestError) as caught:
        await client.imagine(**kwargs)
    assert isinstance(caught.value, ValueError)
    assert http.requests == {}


async def test_bad_wait_timeout_and_task_id_raise_before_any_request(http: MockedHTTP, client: mjasync.Client) -> None:
    with pytest.raises(mjasync.InvalidRequestError):
        await client.task("1").wait(timeout=-5)
    with pytest.raises(mjasync.InvalidRequestError):
        client.task("  ")
    with pytest.raises(mjasync.InvalidRequestError):
        await client.fetch("")
    assert http.requests == {}


@pytest.mark.parametrize(
    "kwargs",
    [{"auth": "basic"}, {"timeout": -1}, {"max_retries": -1}, {"poll_batch_size": 0}, {"reconcile": "guess"},
     {"poll_interval": "fast"}],
)
def test_bad_client_options(kwargs: dict[str, Any]) -> None:
    with pytest.raises(mjasync.InvalidRequestError):
        mjasync.Client(BASE_URL, API_KEY, **kwargs)


def test_bad_base_url() -> None:
    with pytest.raises(mjasync.InvalidRequestError):
        mjasync.Client("proxy.test")


async def test_with_options_shares_the_session(http: MockedHTTP, client: mjasync.Client) -> None:
    http.get(BASE_URL + "/mj/task/1/fetch", payload={"id": "1"}, repeat=True)
    slow = client.with_options(timeout=99.0)
    await client.fetch("1")
    await slow.fetch("1")
    assert slow._sessions.get() is client._sessions.get()
    await slow.close()
    assert not client._sessions.get().closed, "a copy never closes the shared session"
    calls = http.calls("GET", "/mj/task/1/fetch")
    assert [c.kwargs["timeout"].total for c in calls] == [FAST["timeout"], 99.0]


def test_options_are_one_frozen_checked_value(client: mjasync.Client) -> None:
    options = client.options
    assert isinstance(options, mjasync.ClientOptions)
    assert (options.base_url, options.timeout, options.reconcile_delays) == (BASE_URL, FAST["timeout"], (0.01, 0.02))
    assert API_KEY not in repr(options)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.timeout = 1.0  # type: ignore[misc]


async def test_with_options_evolves_the_options_without_building_a_client(
    client: mjasync.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_constructor(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("with_options() must not call Client.__init__")

    monkeypatch.setattr(mjasync.Client, "__init__", no_constructor)
    slow = client.with_options(timeout=99.0, poll_interval=0.5)
    assert (slow.options.timeout, slow.options.poll_interval) == (99.0, 0.5)
    assert slow.options == attrs.evolve(client.options, timeout=99.0, poll_interval=0.5)
    assert client.options.timeout == FAST["timeout"], "the original keeps its options"
    assert slow.callbacks is client.callbacks and slow._sessions is client._sessions
    await slow.close()


@pytest.mark.parametrize(
    "overrides",
    [{"timeot": 1.0}, {"session": None}, {"verify_tls": False}, {"timeout": -1}, {"auth": "basic"},
     {"base_url": "proxy.test"}],
)
def test_with_options_refuses_what_a_copy_cannot_honour(client: mjasync.Client, overrides: dict[str, Any]) -> None:
    with pytest.raises(mjasync.InvalidRequestError):
        client.with_options(**overrides)


def test_with_options_takes_every_option_but_the_sessions() -> None:
    fields = {field.name for field in attrs.fields(mjasync.ClientOptions)}
    assert Overrides.__optional_keys__ == fields - {"verify_tls"}


async def test_user_session_is_never_closed(http: MockedHTTP) -> None:
    http.get(BASE_URL + "/mj/task/1/fetch", payload={"id": "1"})
    async with aiohttp.ClientSession() as session:
        async with mjasync.Client(BASE_URL, API_KEY, session=session, **FAST) as mj:
            await mj.fetch("1")
        assert not session.closed


async def test_client_used_from_another_loop_is_a_clear_error(http: MockedHTTP, client: mjasync.Client) -> None:
    http.get(BASE_URL + "/mj/task/1/fetch", payload={"id": "1"}, repeat=True)
    await client.fetch("1")

    def other_loop() -> None:
        async def use() -> None:
            await client.fetch("1")

        asyncio.run(use())

    with pytest.raises(mjasync.MjError, match="another event loop"):
        await asyncio.to_thread(other_loop)


async def test_api_key_never_in_repr_logs_or_errors(
    http: MockedHTTP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mjasync")
    http.post(BASE_URL + "/mj/submit/imagine", status=401, body=f"bad key {API_KEY}")
    http.post(BASE_URL + "/mj/submit/imagine", status=500, body="", repeat=True)
    for path in ("/mj/task/list", "/mj/task/queue"):
        http.get(BASE_URL + path, status=503, body="", repeat=True)
    http.post(BASE_URL + "/mj/task/query", status=404, body="", repeat=True)
    async with mjasync.Client(BASE_URL, API_KEY, **FAST) as mj:
        errors: list[BaseException] = []
        for _ in range(2):
            try:
                await mj.imagine("cat")
            except mjasync.MjError as exc:
                errors.append(exc)
        texts = [repr(mj), repr(mj._transport.config), *map(str, errors), *map(repr, errors)]
    texts += [str(getattr(e, "body", "")) for e in errors]
    assert isinstance(errors[0], mjasync.AuthenticationError)
    assert isinstance(errors[1], mjasync.SubmitUncertainError)
    assert caplog.records, "debug logging produced records"
    for text in texts + [r.getMessage() for r in caplog.records]:
        assert API_KEY not in text


async def test_logged_secret_is_scrubbed_even_when_a_body_echoes_it(
    http: MockedHTTP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mjasync")
    async with mjasync.Client(BASE_URL, API_KEY, **FAST):
        logging.getLogger("mjasync").warning("server said %s", f"key={API_KEY}")
    assert API_KEY not in caplog.text and "key=***" in caplog.text


def test_logging_is_silent_by_default_and_opt_in_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from mjasync._logging import logger, setup_from_env

    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    monkeypatch.setattr(logger, "handlers", list(logger.handlers))
    monkeypatch.setattr(logger, "level", logger.level)
    monkeypatch.setenv("MJASYNC_LOG", "debug")
    setup_from_env()
    assert logger.level == logging.DEBUG
    assert any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.NullHandler) for h in logger.handlers)


def test_a_secret_shared_by_two_clients_stays_registered_when_one_is_gone() -> None:
    import gc

    from mjasync._logging import scrub

    first = mjasync.Client(BASE_URL, API_KEY)
    second = mjasync.Client(BASE_URL, API_KEY)
    del first
    gc.collect()
    assert scrub(f"key={API_KEY}") == "key=***"
    assert second.base_url == BASE_URL
