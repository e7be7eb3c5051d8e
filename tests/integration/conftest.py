"""Fixtures that run the SDK against the in-process simulator over real loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import mjasync
from mjasync.testing import FakeProxy
from tests.conftest import FAST

DIALECTS = ("reference", "extended", "relay")


@pytest.fixture(params=DIALECTS)
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeProxy]:
    async with FakeProxy(request.param, job_seconds=0.05, seed=7) as proxy:
        yield proxy


def client_for(fake: FakeProxy, **overrides: Any) -> mjasync.Client:
    return mjasync.Client(fake.url, fake.api_key, auth=fake.auth, **{**FAST, **overrides})


@pytest.fixture
async def mj(fake: FakeProxy) -> AsyncIterator[mjasync.Client]:
    async with client_for(fake) as client:
        yield client
