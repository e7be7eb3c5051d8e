"""Redirects: credentials and bodies never go to another origin; a same-origin redirect is followed."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

import mjasync
from tests.conftest import API_KEY, FAST
from tests.hostile._origins import Origin, answer_ok

PASSWORD = "url-password-SECRET-42"
QUERY_KEY = "query-key-SECRET-4242"
HOOK_TOKEN = "hook-token-SECRET-0123456789abcdef"
SECRETS = (API_KEY, PASSWORD, QUERY_KEY, HOOK_TOKEN)
# (auth style, api key, base_url userinfo and query): every way a credential travels.
AUTH_VARIANTS: dict[str, tuple[mjasync.AuthStyle, str | None, str, str]] = {
    "bearer": ("bearer", API_KEY, "", ""),
    "authorization": ("authorization", API_KEY, "", ""),
    "mj-api-secret": ("mj-api-secret", API_KEY, "", ""),
    "url-credentials": ("mj-api-secret", None, f"user:{PASSWORD}@", f"?key={QUERY_KEY}"),
}


def client(origin: Origin, variant: str) -> mjasync.Client:
    auth, key, userinfo, query = AUTH_VARIANTS[variant]
    base_url = origin.url.replace("http://", f"http://{userinfo}") + "/" + query
    mj = mjasync.Client(base_url, key, auth=auth, **{**FAST, "max_retries": 0})
    mj.callbacks.configure("http://127.0.0.1:9/mj-hooks", token=HOOK_TOKEN)
    return mj


async def call(mj: mjasync.Client, method: str) -> Any:
    if method == "GET":
        return await mj.fetch("1234")
    return await mj.imagine("a lighthouse at dusk")


def redirect_to(target: Callable[[web.Request], str], status: int) -> Any:
    """A's answer: redirect everything outside /moved to `target(request)`."""

    async def answer(origin: Origin, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/moved"):
            return await answer_ok(origin, request)
        return web.Response(status=status, headers={"Location": target(request)})

    return answer


def expected_credential(variant: str) -> tuple[str, str]:
    if variant == "bearer":
        return "Authorization", f"Bearer {API_KEY}"
    if variant == "authorization":
        return "Authorization", API_KEY
    if variant == "mj-api-secret":
        return "mj-api-secret", API_KEY
    return "Authorization", "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()


@pytest.mark.parametrize("variant", list(AUTH_VARIANTS))
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_cross_origin_redirect_is_not_followed_and_sends_nothing_there(
    variant: str, method: str, status: int
) -> None:
    async with Origin() as b:
        async with Origin(redirect_to(lambda request: f"{b.url}{request.path_qs}", status)) as a:
            async with client(a, variant) as mj:
                try:
                    await call(mj, method)
                except mjasync.APIStatusError as error:
                    exc: BaseException | None = error
                except mjasync.SubmitUncertainError as error:
                    # A 303 "see other" to a POST may follow a created job: the submit is reconciled.
                    assert (method, status) == ("POST", 303)
                    exc = error.cause
                else:
                    exc = None
    assert b.received == [], "nothing, neither credentials nor a body, reached the other origin"
    assert isinstance(exc, mjasync.RedirectError)
    assert exc.status_code == status
    assert exc.location is not None
    assert exc.location.startswith(b.url), "the Location's origin is kept"
    shown = " ".join([str(exc), repr(exc), exc.location, exc.body or "", repr(exc.args)])
    for secret in SECRETS:
        assert secret not in shown


@pytest.mark.parametrize("variant", list(AUTH_VARIANTS))
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("status", [302, 307])
async def test_a_same_origin_redirect_is_followed_with_the_credentials(
    variant: str, method: str, status: int
) -> None:
    async with Origin(redirect_to(lambda request: f"/moved{request.path_qs}", status)) as a:
        async with client(a, variant) as mj:
            await call(mj, method)
    first, final = a.received
    assert final.path_qs == f"/moved{first.path_qs}"
    name, value = expected_credential(variant)
    assert final.headers.get(name) == value
    if method == "POST" and status == 307:
        assert final.method == "POST"
        assert final.body == first.body
        assert HOOK_TOKEN.encode() in final.body, "the submit body (with the hook) went to the same origin"


async def test_a_redirect_loop_ends_with_a_typed_error() -> None:
    async with Origin(redirect_to(lambda request: request.path_qs, 302)) as a:
        async with client(a, "bearer") as mj:
            with pytest.raises(mjasync.RedirectError) as caught:
                await mj.fetch("1234")
    assert caught.value.status_code == 302
    assert len(a.received) <= 11


@pytest.mark.parametrize("variant", list(AUTH_VARIANTS))
async def test_a_download_follows_a_redirect_to_another_origin_without_the_credentials(variant: str) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64

    async def image(origin: Origin, request: web.Request) -> web.StreamResponse:
        return web.Response(body=png, content_type="image/png")

    async with Origin(image) as cdn:
        async with Origin(redirect_to(lambda request: f"{cdn.url}/cdn/1234.png", 302)) as a:
            async with client(a, variant) as mj:
                assert await mj.read_image(f"{a.url}/mj/image/1234") == png
    name, value = expected_credential(variant)
    assert a.received[0].headers.get(name) == value, "base_url's own origin gets the credentials"
    (fetched,) = cdn.received
    assert "Authorization" not in fetched.headers
    assert "mj-api-secret" not in fetched.headers
    assert all(secret not in repr(fetched) for secret in SECRETS)


@pytest.mark.parametrize(
    "location",
    ["http://user:pw@{host}/moved/x", "http://[::1", "http://127.0.0.1:99999/x", "ftp://{host}/x"],
)
async def test_a_hostile_location_ends_with_a_typed_error(location: str) -> None:
    async with Origin(redirect_to(lambda request: location.format(host=request.host), 307)) as a:
        async with client(a, "bearer") as mj:
            with pytest.raises(mjasync.RedirectError) as caught:
                await mj.fetch("1234")
    assert caught.value.status_code == 307
    assert len(a.received) == 1
    assert "pw" not in str(caught.value)
