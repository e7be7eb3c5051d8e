"""Bad input is refused with InvalidRequestError before any request is sent (issue 11, item 12)."""

from __future__ import annotations

import asyncio
import base64
import math
from typing import Any

import pytest

import mjasync
from tests.conftest import API_KEY, BASE_URL, FAST, MockedHTTP

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
HTML = b"<!doctype html><html><body>not an image</body></html>"


@pytest.mark.parametrize(
    "call",
    [
        lambda mj: mj.imagine("a cat \ud800"),
        lambda mj: mj.shorten("\udfff"),
        lambda mj: mj.imagine("cat", timeout=math.inf),
        lambda mj: mj.fetch("1", timeout=math.inf),
        lambda mj: asyncio.wait_for(mj.task("1").wait(timeout=math.inf), 5),
        lambda mj: mj.imagine("cat", notify_hook=12345),
        lambda mj: mj.imagine("cat", notify_hook="http:///nohost"),
        lambda mj: mj.imagine("cat", notify_hook="http://a b/c"),
        lambda mj: mj.imagine("cat", notify_hook="http://hooks.example/a\r\nX-Evil: 1"),
        lambda mj: mj.imagine("cat", notify_hook="http://hooks.example/a\nb"),
        lambda mj: mj.imagine("cat", extra_body={"prompt": "something else"}),
        lambda mj: mj.imagine("cat", extra_body={"notifyHook": "http://evil.example/h"}),
        lambda mj: mj.imagine("cat", extra_body={"state": "x"}),
        lambda mj: mj.blend([PNG, PNG], extra_body={"base64Array": []}),
        lambda mj: mj.imagine("cat", images=[b"this is plain text, not an image"]),
        lambda mj: mj.imagine("cat", images=[HTML]),
        lambda mj: mj.imagine("cat", images=["data:text/html;base64," + base64.b64encode(HTML).decode()]),
        lambda mj: mj.imagine("cat", images=["data:text/html;base64," + base64.b64encode(PNG).decode()]),
        lambda mj: mj.imagine("cat", images=[base64.b64encode(HTML).decode()]),
        lambda mj: mj.describe(HTML),
    ],
    ids=[
        "surrogate-prompt", "surrogate-shorten", "inf-submit-timeout", "inf-fetch-timeout",
        "inf-wait-timeout", "int-hook", "hook-without-host", "hook-with-space", "hook-with-crlf",
        "hook-with-lf", "extra-body-prompt", "extra-body-notify-hook", "extra-body-state",
        "extra-body-base64-array", "text-bytes-image", "html-bytes-image", "html-data-url",
        "png-labelled-html", "html-base64-image", "html-describe",
    ],
)
async def test_bad_input_is_refused_before_any_request(
    http: MockedHTTP, client: mjasync.Client, call: Any
) -> None:
    with pytest.raises(mjasync.InvalidRequestError):
        await call(client)
    assert http.requests == {}


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": math.inf},
        {"connect_timeout": math.inf},
        {"poll_interval": math.inf},
        {"missing_after": math.inf},
        {"retry_backoff": math.inf},
        {"reconcile_delays": (1.0, math.inf)},
        {"timeout": -math.inf},
        {"max_retries": True},
        {"poll_batch_size": True},
    ],
    ids=lambda options: "-".join(f"{k}={v}" for k, v in options.items()),
)
async def test_bad_client_options_are_refused_before_any_request(
    http: MockedHTTP, options: dict[str, Any]
) -> None:
    with pytest.raises(mjasync.InvalidRequestError):
        mjasync.Client(BASE_URL, API_KEY, **{**FAST, **options})
    async with mjasync.Client(BASE_URL, API_KEY, **FAST) as mj:
        with pytest.raises(mjasync.InvalidRequestError):
            mj.with_options(**options)
    assert http.requests == {}


async def test_a_good_hook_and_real_images_still_go_out(http: MockedHTTP, client: mjasync.Client) -> None:
    http.post(BASE_URL + "/mj/submit/imagine", payload={"code": 1, "description": "ok", "result": "7"})
    task = await client.imagine(
        "cat", images=[PNG, "data:image/jpeg;base64,/9j/anBlZw=="],
        notify_hook="https://hooks.example:8443/mj/cb?x=1", extra_body={"chooseSameChannel": True},
    )
    assert task.id == "7"
    assert len(http.calls("POST", "/mj/submit/imagine")) == 1
