"""RedisStore's own promises, against a real redis-server (tests/redis_server.py): what survives a
Redis restart, errors as StoreError, leases that expire on the server's clock, the key layout,
the bus between replicas, secrets kept out of reprs. The shared store contract runs in
tests/unit/test_stores.py."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

import mjasync
from mjasync.testing import FakeProxy
from tests.conftest import FAST, SETTLE_TIMEOUT, eventually
from tests.redis_server import RedisServer, free_port
from tests.unit.test_stores import info, record

MakeServer = Callable[..., RedisServer]


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain redis-py client on the session's server, to look at (and break) keys directly."""
    client = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_server: RedisServer, redis_namespace: str) -> AsyncIterator[mjasync.RedisStore]:
    store = mjasync.RedisStore(redis_server.url, namespace=redis_namespace)
    yield store
    await store.close()


def unreachable_url() -> str:
    return f"redis://user:hunter2-SECRET@127.0.0.1:{free_port()}/0"  # nothing listens there


async def keys_of(raw: redis.asyncio.Redis, namespace: str) -> set[str]:
    return {key async for key in raw.scan_iter(match=f"{namespace}*")}


# -- construction, repr, the optional extra --------------------------------------------------------


def test_construction_does_no_io_and_needs_no_loop() -> None:
    store = mjasync.RedisStore(unreachable_url(), namespace="bot", lease=5.0)  # nothing listens: no error
    assert (store.lease, store.namespace) == (5.0, "bot")
    assert type(store).__module__ == "mjasync" and "mjasync.RedisStore" in repr(store)


@pytest.mark.parametrize(
    "url",
    [
        "redis://:hunter2-SECRET@127.0.0.1:6379/0",
        "redis://admin:hunter2-SECRET@127.0.0.1:6379/0",
        "rediss://127.0.0.1:6379/0?password=hunter2-SECRET",
        "unix:///run/redis.sock?db=0&password=hunter2-SECRET",
        "redis://:hunter2-SECRET@127.0.0.1:port/0",  # does not parse: nothing of it shown
    ],
)
def test_repr_hides_a_password(url: str) -> None:
    store = mjasync.RedisStore(url)
    assert "hunter2" not in repr(store) and "SECRET" not in repr(store)


async def test_repr_of_a_client_passed_in_hides_its_password() -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=6379, password="hunter2-SECRET")
    store = mjasync.RedisStore(client, namespace="bot")
    assert "127.0.0.1:6379/0" in repr(store) and "hunter2" not in repr(store)
    await client.aclose()


def test_importing_mjasync_does_not_import_redis_and_a_missing_package_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "import mjasync\n"
        "assert 'redis' not in sys.modules, 'import mjasync imported redis'\n"
        "sys.modules['redis'] = None  # as if the extra were not installed\n"
        "try:\n"
        "    mjasync.RedisStore('redis://127.0.0.1:6379/0')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=SETTLE_TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert "pip install 'mjasync[redis]'" in done.stdout


# -- persistence: what a Redis restart keeps ----------------------------------------------------------


async def test_records_survive_a_restart_of_a_persistent_redis(make_redis_server: MakeServer) -> None:
    server = make_redis_server(persistent=True)  # appendonly yes
    store = mjasync.RedisStore(server.url, namespace="bot")
    await store.add(record("mja-1", idempotency_key="k"))
    await store.add(record("mja-2"))
    await store.set_task_id("mja-1", info().id)
    await store.finish([info()], at=9.0)
    before = await store.get("mja-1")
    await store.close()
    await asyncio.to_thread(server.restart)
    again = mjasync.RedisStore(server.url, namespace="bot")
    assert await again.get("mja-1") == before
    assert await again.add(record("mja-3", idempotency_key="k")) == before  # the key is still held
    assert await again.get("mja-3") is None
    assert sorted(r.tag for r in await again.claim("bot-1")) == ["mja-1", "mja-2"]
    await again.close()


async def test_a_store_goes_on_after_its_redis_restarted(make_redis_server: MakeServer) -> None:
    server = make_redis_server(persistent=True)
    store = mjasync.RedisStore(server.url, namespace="bot")
    await store.add(record("mja-1"))
    await asyncio.to_thread(server.restart)  # its pooled connection is dead now
    got = None
    for _ in range(3):  # redis-py reconnects; at most the first use may see the broken connection
        try:
            got = await store.get("mja-1")
            break
        except mjasync.StoreError:
            continue
    assert got is not None and got.tag == "mja-1"
    await store.add(record("mja-2"))
    assert sorted(r.tag for r in await store.claim("bot-1")) == ["mja-1", "mja-2"]
    await store.close()


async def test_a_restart_of_a_redis_without_persistence_loses_every_record(make_redis_server: MakeServer) -> None:
    """Documented behaviour, not a wish: without `appendonly yes` (or RDB snapshots) Redis keeps
    records in memory only, so a Redis restart forgets every job and frees every key."""
    server = make_redis_server(persistent=False)
    store = mjasync.RedisStore(server.url, namespace="bot")
    await store.add(record("mja-1", idempotency_key="k"))
    await store.close()
    await asyncio.to_thread(server.restart)
    again = mjasync.RedisStore(server.url, namespace="bot")
    assert await again.get("mja-1") is None
    assert await again.claim("bot-1") == []
    fresh = record("mja-2", idempotency_key="k")
    assert await again.add(fresh) == fresh  # the key is free again: a redelivery would submit again
    await again.close()


# -- errors ---------------------------------------------------------------------------------------


async def test_an_unreachable_redis_raises_store_error_on_every_operation() -> None:
    store = mjasync.RedisStore(unreachable_url(), namespace="bot")
    operations: list[Callable[[], Any]] = [
        lambda: store.add(record()), lambda: store.get("mja-1"), lambda: store.claim("bot-1"),
        lambda: store.renew("bot-1"), lambda: store.set_sent("mja-1", sent_at=1.0, may_resend=True),
        lambda: store.set_task_id("mja-1", "1"), lambda: store.finish([info()], at=1.0),
        lambda: store.delete("mja-1"), lambda: store.forget("1", 1.0), lambda: store.purge(1.0),
        lambda: store.publish(b"x"),
    ]
    for operation in operations:
        with pytest.raises(mjasync.StoreError) as caught:
            await operation()
        assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)
        assert "hunter2" not in str(caught.value) and "127.0.0.1" in str(caught.value)
    with pytest.raises(mjasync.StoreError):
        await anext(aiter(store.subscribe()))
    await store.close()


async def test_a_client_whose_redis_is_unreachable_sends_nothing() -> None:
    async with FakeProxy("reference", job_seconds=0.05, seed=3) as fake:
        store = mjasync.RedisStore(unreachable_url())
        async with mjasync.Client(fake.url, fake.api_key, auth=fake.auth, store=store, **FAST) as mj:
            with pytest.raises(mjasync.StoreError):
                await mj.imagine("x")
        assert fake.stats.total_requests == 0
        await store.close()


async def test_a_replica_cut_off_from_redis_keeps_waiting_by_polling_and_submits_nothing(
    make_redis_server: MakeServer,
) -> None:
    server = make_redis_server()
    async with FakeProxy("reference", job_seconds=0.3, seed=3) as fake:
        store = mjasync.RedisStore(server.url, namespace="bot")
        async with mjasync.Client(fake.url, fake.api_key, auth=fake.auth, store=store, **FAST) as mj:
            task = await mj.imagine("before the cut")
            await asyncio.to_thread(server.stop)  # Redis is gone: a partition, a crash
            assert (await task.wait(timeout=SETTLE_TIMEOUT)).succeeded  # polling needs no store
            with pytest.raises(mjasync.StoreError):
                await mj.imagine("after the cut")
        assert fake.stats.accepted_submits == 1
        await store.close()


async def test_a_timeout_is_a_store_error(make_redis_server: MakeServer) -> None:
    server = make_redis_server()
    pauser = redis.asyncio.Redis.from_url(server.url)
    await pauser.client_pause(600_000, all=True)  # the server answers no one
    client = redis.asyncio.Redis(
        host="127.0.0.1", port=server.port, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    store = mjasync.RedisStore(client, namespace="bot")
    with pytest.raises(mjasync.StoreError) as caught:
        await store.add(record())
    assert isinstance(caught.value.__cause__, redis.exceptions.TimeoutError)
    await store.close()
    await asyncio.to_thread(server.stop)  # the pause ends with the server
    await client.aclose()
    await pauser.aclose()


async def test_a_response_error_is_a_store_error(
    store: mjasync.RedisStore, raw: redis.asyncio.Redis, redis_namespace: str
) -> None:
    await raw.rpush(f"{redis_namespace}:rec:mja-1", "not a hash")  # WRONGTYPE for every command on it
    for operation in (store.get("mja-1"), store.add(record("mja-1"))):
        with pytest.raises(mjasync.StoreError) as caught:
            await operation
        assert isinstance(caught.value.__cause__, redis.exceptions.ResponseError)


async def test_a_closed_store_refuses_work(store: mjasync.RedisStore) -> None:
    await store.add(record())
    await store.close()
    with pytest.raises(mjasync.StoreError, match="closed"):
        await store.get("mja-1")
    await store.close()  # again: nothing happens
    assert "closed" in repr(store)


# -- records and keys -------------------------------------------------------------------------------


async def test_a_corrupt_record_is_skipped_with_a_warning(
    store: mjasync.RedisStore, raw: redis.asyncio.Redis, redis_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    for tag in ("mja-good", "mja-bad", "mja-badfield", "mja-later"):
        await store.add(record(tag, owner="dead"))
        await store.set_task_id(tag, "7")
    await raw.hset(f"{redis_namespace}:rec:mja-bad", "record", "{not json")
    await raw.hset(f"{redis_namespace}:rec:mja-badfield", "sent", "[1.0")
    with caplog.at_level(logging.WARNING, "mjasync"):
        claimed = await store.claim("bot-2")
        await store.finish([info("7")], at=3.0)  # the others still get their snapshot
    assert sorted(r.tag for r in claimed) == ["mja-good", "mja-later"]
    warned = [r.getMessage() for r in caplog.records if r.name == "mjasync" and r.levelno == logging.WARNING]
    assert any("mja-bad'" in m for m in warned) and any("mja-badfield" in m for m in warned)
    for tag in ("mja-good", "mja-later"):
        got = await store.get(tag)
        assert got is not None and got.ended == 3.0 and got.owner == "bot-2"
    with pytest.raises(mjasync.StoreError, match="mja-bad"):
        await store.get("mja-bad")


async def test_every_key_is_under_the_namespace_and_nothing_is_left_behind(
    redis_server: RedisServer, raw: redis.asyncio.Redis, redis_namespace: str
) -> None:
    store = mjasync.RedisStore(redis_server.url, namespace=redis_namespace)
    neighbour = mjasync.RedisStore(redis_server.url, namespace=redis_namespace + "x")
    await neighbour.add(record("mja-n", idempotency_key="k"))
    await store.add(record("mja-1", idempotency_key="k"))  # another namespace's key is no conflict
    await store.add(record("mja-2", owner="dead"))
    await store.add(record("mja-3"))
    await store.set_task_id("mja-1", "1")
    await store.set_task_id("mja-2", "2")
    await store.set_sent("mja-3", sent_at=5.0, may_resend=False)
    await store.finish([info("1")], at=10.0)
    assert sorted(r.tag for r in await store.claim("bot-1")) == ["mja-1", "mja-2", "mja-3"]
    keys = await keys_of(raw, redis_namespace + ":")
    assert {k.split(":")[1] for k in keys} == {"rec", "key", "task", "owner", "owners", "lease", "ended"}
    assert await neighbour.get("mja-1") is None and await store.get("mja-n") is None
    await store.forget("2", 20.0)
    await store.delete("mja-3")
    assert await store.purge(30.0) == 2
    assert await keys_of(raw, redis_namespace + ":") == {f"{redis_namespace}:lease:bot-1"}  # it expires
    assert await raw.pttl(f"{redis_namespace}:lease:bot-1") > 0
    assert await neighbour.get("mja-n") is not None
    await store.close()
    await neighbour.close()


async def test_a_client_passed_in_with_decoded_responses_works_and_stays_open(
    redis_server: RedisServer, redis_namespace: str
) -> None:
    client = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    store = mjasync.RedisStore(client, namespace=redis_namespace)
    written = record("mja-1", idempotency_key="k", meta={"ü": ["ok", 2.5]})
    assert await store.add(written) == written
    assert await store.add(record("mja-2", idempotency_key="k")) == written
    await store.set_task_id("mja-1", "1")
    await store.finish([info("1")], at=2.0)
    (claimed,) = await store.claim("bot-1")
    assert claimed.final == info("1") and claimed.meta == {"ü": ["ok", 2.5]}
    await store.close()
    assert await client.ping()  # the store never closes a client it was given
    await client.aclose()


async def test_close_closes_the_connections_of_a_store_built_from_a_url(
    redis_server: RedisServer, raw: redis.asyncio.Redis, redis_namespace: str
) -> None:
    name = f"conn-{redis_namespace}"
    store = mjasync.RedisStore(f"{redis_server.url}?client_name={name}", namespace=redis_namespace)
    await asyncio.gather(*(store.get(f"mja-{n}") for n in range(5)))

    async def connections() -> int:
        return sum(1 for c in await raw.client_list() if c.get("name") == name)

    assert await connections() >= 1
    await store.close()
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while await connections():
        assert time.monotonic() < deadline, "the store's connections stayed open"
        await asyncio.sleep(0.01)


# -- leases -------------------------------------------------------------------------------------------


async def test_an_expired_lease_lets_another_owner_claim(
    redis_server: RedisServer, raw: redis.asyncio.Redis, redis_namespace: str
) -> None:
    first = mjasync.RedisStore(redis_server.url, namespace=redis_namespace, lease=1.0)
    second = mjasync.RedisStore(redis_server.url, namespace=redis_namespace, lease=1.0)
    for n in range(3):
        await first.add(record(f"mja-{n}", owner="a"))
    assert len(await first.claim("a")) == 3  # a's lease is live: its records are its own
    assert await second.claim("b") == []
    lease = f"{redis_namespace}:lease:a"
    assert 0 < await raw.pttl(lease) <= 1000  # a key with the lease as its TTL
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while await raw.exists(lease):  # a stops renewing (it died): Redis ends the lease
        assert time.monotonic() < deadline, "the lease never expired"
        await asyncio.sleep(0.05)
    claimed = await second.claim("b")
    assert sorted((r.tag, r.owner) for r in claimed) == [(f"mja-{n}", "b") for n in range(3)]
    assert await first.claim("a") == []  # b's lease is live now: a, back, gets nothing of it
    got = await first.get("mja-0")
    assert got is not None and got.owner == "b"
    await first.close()
    await second.close()


async def test_renew_keeps_a_lease_alive(
    redis_server: RedisServer, raw: redis.asyncio.Redis, redis_namespace: str
) -> None:
    store = mjasync.RedisStore(redis_server.url, namespace=redis_namespace, lease=60.0)
    await store.renew("a")
    ttl = await raw.pttl(f"{redis_namespace}:lease:a")
    assert 50_000 < ttl <= 60_000
    await store.close()


# -- the bus between replicas -------------------------------------------------------------------


async def test_the_bus_carries_messages_between_stores_of_one_namespace(
    redis_server: RedisServer, raw: redis.asyncio.Redis, redis_namespace: str
) -> None:
    sender = mjasync.RedisStore(redis_server.url, namespace=redis_namespace)
    receiver = mjasync.RedisStore(redis_server.url, namespace=redis_namespace)
    other = mjasync.RedisStore(redis_server.url, namespace=redis_namespace + "x")
    assert isinstance(sender, mjasync._store.Bus)
    got: list[bytes] = []
    heard_other: list[bytes] = []

    async def listen(store: mjasync.RedisStore, into: list[bytes]) -> None:
        async for message in store.subscribe():
            into.append(message)

    listeners = [asyncio.ensure_future(listen(receiver, got)), asyncio.ensure_future(listen(other, heard_other))]

    async def subscribed() -> bool:
        counts = dict(await raw.pubsub_numsub(f"{redis_namespace}:bus", f"{redis_namespace}x:bus"))
        return all(count == 1 for count in counts.values())

    deadline = time.monotonic() + SETTLE_TIMEOUT
    while not await subscribed():
        assert time.monotonic() < deadline, "never subscribed"
        await asyncio.sleep(0.01)
    await sender.publish(b'{"id": "1", "status": "SUCCESS", "\xff": 1}')
    await sender.publish(b"second")
    await eventually(lambda: len(got) == 2)
    assert got == [b'{"id": "1", "status": "SUCCESS", "\xff": 1}', b"second"]
    assert heard_other == []
    for listener in listeners:
        listener.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    for store in (sender, receiver, other):
        await store.close()


# -- through the client -------------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeProxy]:
    async with FakeProxy("reference", job_seconds=0.05, seed=3) as proxy:
        yield proxy


async def test_a_key_holds_across_clients_and_resume_hands_back_the_job(
    fake: FakeProxy, redis_server: RedisServer, redis_namespace: str
) -> None:
    stores: list[mjasync.RedisStore] = []

    def client() -> mjasync.Client:
        stores.append(mjasync.RedisStore(redis_server.url, namespace=redis_namespace))
        return mjasync.Client(fake.url, fake.api_key, auth=fake.auth, store=stores[-1], replica="bot-1", **FAST)

    async with client() as mj:
        task = await mj.imagine("a fox", idempotency_key="update-41", meta={"chat": 41})
    async with client() as mj:
        again = await mj.imagine("a fox", idempotency_key="update-41")
        assert again.id == task.id
        assert (await again.wait(timeout=SETTLE_TIMEOUT)).succeeded
    async with client() as mj:
        (back,) = await mj.resume()
        assert (back.id, back.meta) == (task.id, {"chat": 41})
        assert back.last is not None and back.last.succeeded  # the final snapshot was stored
        await back.forget()
        assert await mj.resume() == []
    assert fake.stats.accepted_submits == 1
    for store in stores:  # a client leaves its store open: the store is the application's
        await store.close()


async def test_a_callback_on_one_replica_wakes_the_waiter_on_another(
    redis_server: RedisServer, raw: redis.asyncio.Redis, redis_namespace: str
) -> None:
    stores = [mjasync.RedisStore(redis_server.url, namespace=redis_namespace) for _ in range(2)]
    async with FakeProxy("extended", job_seconds=0.05) as proxy:
        slow = {**FAST, "poll_interval": 3600.0}
        async with (
            mjasync.Client(proxy.url, proxy.api_key, auth=proxy.auth, store=stores[0], replica="a", **slow) as a,
            mjasync.Client(proxy.url, proxy.api_key, auth=proxy.auth, store=stores[1], replica="b", **slow) as b,
        ):
            token = "replicas-share-this-token"
            a.callbacks.configure("http://127.0.0.1", token=token)
            url = await a.callbacks.serve("127.0.0.1", 0)
            b.callbacks.configure(url, token=token)  # b's jobs call back to a's receiver
            assert await b.resume() == []  # b's first use: it subscribes to the replicas' bus
            deadline = time.monotonic() + SETTLE_TIMEOUT
            while dict(await raw.pubsub_numsub(f"{redis_namespace}:bus")).get(f"{redis_namespace}:bus", 0) < 1:
                assert time.monotonic() < deadline, "b never subscribed"  # a message before it is lost
                await asyncio.sleep(0.01)
            task = await b.imagine("a fox")
            info = await asyncio.wait_for(task.wait(), SETTLE_TIMEOUT)  # polling alone: an hour
            assert info.succeeded
            assert b.stats.resolved_by_callback == 1 and a.stats.resolved_by_callback == 0
    for store in stores:
        await store.close()
