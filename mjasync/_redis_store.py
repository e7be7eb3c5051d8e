"""RedisStore: job records in Redis, shared by every replica that connects to it.

Key layout (`N` is the namespace; every key starts with `N:`):

- `N:rec:<tag>`: a hash, one per record. `record` holds `encode_record` of the record as
  added (its body emptied); the parts that change live in fields of their own, so each update is
  one HSET and the JSON written by Python is never rewritten by Lua (Redis's cjson would round
  floats to 14 digits and turn `[]` into `{}`): `body` (JSON; `{}` once accepted), `owner`
  (plain text), `key` (the idempotency key, plain text), `task_id` (plain text), `sent` (JSON
  `[sent_at, may_resend]`), `final` (JSON of the snapshot's wire form), `ended` and
  `forgotten` (JSON numbers). A field present overrides the same field of `record`.
- `N:key:<idempotency key>`: the tag that holds the key (written only when none holds it).
- `N:task:<task id>`: a set of the tags of that task id.
- `N:owner:<owner>`: a set of the tags that owner follows (forgotten ones leave it);
  `N:owners`: the set of owners that have records (what a claim walks).
- `N:lease:<owner>`: present while the owner's lease is live (a TTL of `lease` seconds, kept by
  the Redis server's clock: replicas need no synchronised clocks).
- `N:ended`: a sorted set of the tags of ended (or forgotten) records, scored by their end
  (what purge reads).
- `N:bus`: the pub/sub channel replicas pass callbacks on (`publish`/`subscribe`: the Bus).

Every operation that reads and writes runs as one Lua script, which Redis runs atomically:
`add` checks the key and writes the record and its indexes in one step; an update checks that
its record still exists before it writes (a deleted or purged record never comes back);
`forget` marks a record and takes it out of its owner's set (no claim takes it again); `claim`
renews the caller's lease, moves the records of every owner without a live lease to the caller
and reads the caller's records, all in one step, so two claimers never both get one record.
A single Redis server (or a primary behind Sentinel) is supported, not Redis Cluster: the
scripts compute their keys.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._convert import structure, unstructure
from ._exceptions import StoreError
from ._logging import logger, redact_url
from ._models import TaskInfo
from ._store import DEFAULT_LEASE, JobRecord, decode_record, encode_record

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["RedisStore"]

_POOL_SIZE: Final = 50
"""Connections a store built from a URL opens at most (`?max_connections=` in the URL overrides)."""
_POOL_TIMEOUT: Final = 20
"""Seconds an operation waits for a free connection before it fails (StoreError)."""
_LISTEN_STEP: Final = 1.0
"""Seconds a subscription waits for a message before it looks whether it is being cancelled."""
_CLOSE_TIMEOUT: Final = 5.0
"""Seconds closing a subscription may take before it is left to the garbage collector."""
_MISSING: Final = "RedisStore needs the redis package: pip install 'mjasync[redis]'"

_LUA_COMMON: Final = """
local p = ARGV[1]
local function drop(tag)
  local rec = p .. 'rec:' .. tag
  if redis.call('EXISTS', rec) == 0 then return 0 end
  local f = redis.call('HMGET', rec, 'owner', 'key', 'task_id')
  redis.call('DEL', rec)
  if f[1] then
    redis.call('SREM', p .. 'owner:' .. f[1], tag)
    if redis.call('SCARD', p .. 'owner:' .. f[1]) == 0 then redis.call('SREM', p .. 'owners', f[1]) end
  end
  if f[2] and redis.call('GET', p .. 'key:' .. f[2]) == tag then redis.call('DEL', p .. 'key:' .. f[2]) end
  if f[3] then redis.call('SREM', p .. 'task:' .. f[3], tag) end
  redis.call('ZREM', p .. 'ended', tag)
  return 1
end
local function opt(value)
  if value == '' then return nil end
  return string.sub(value, 2)
end
"""

_ADD: Final = """
-- ARGV: prefix, tag, owner, key?, task_id?, ended?, then the hash's field/value pairs.
-- Returns false when written, or {holder tag, holder hash} when another record holds the key.
local tag, owner, key, task_id, ended = ARGV[2], ARGV[3], opt(ARGV[4]), opt(ARGV[5]), opt(ARGV[6])
if key then
  local holder = redis.call('GET', p .. 'key:' .. key)
  if holder then
    local held = redis.call('HGETALL', p .. 'rec:' .. holder)
    if #held > 0 then return {holder, held} end
  end
end
drop(tag)  -- a record of the same tag is replaced, like an INSERT OR REPLACE
redis.call('HSET', p .. 'rec:' .. tag, unpack(ARGV, 7))
if redis.call('HEXISTS', p .. 'rec:' .. tag, 'forgotten') == 0 then
  redis.call('SADD', p .. 'owner:' .. owner, tag)
  redis.call('SADD', p .. 'owners', owner)
end
if key then redis.call('SET', p .. 'key:' .. key, tag) end
if task_id then redis.call('SADD', p .. 'task:' .. task_id, tag) end
if ended then redis.call('ZADD', p .. 'ended', ended, tag) end
return false
"""

_UPDATE: Final = """
-- ARGV: prefix, tag, task_id?, then field/value pairs; nothing when the record is gone.
local rec = p .. 'rec:' .. ARGV[2]
if redis.call('EXISTS', rec) == 0 then return 0 end
local task_id = opt(ARGV[3])
if task_id then
  local old = redis.call('HGET', rec, 'task_id')
  if old then redis.call('SREM', p .. 'task:' .. old, ARGV[2]) end
  redis.call('SADD', p .. 'task:' .. task_id, ARGV[2])
end
redis.call('HSET', rec, unpack(ARGV, 4))
return 1
"""

_FINISH: Final = """
-- ARGV: prefix, ended (JSON), ended (a score), then task id / final snapshot pairs.
local ended, score = ARGV[2], ARGV[3]
for i = 4, #ARGV, 2 do
  for _, tag in ipairs(redis.call('SMEMBERS', p .. 'task:' .. ARGV[i])) do
    local rec = p .. 'rec:' .. tag
    if redis.call('EXISTS', rec) == 1 then
      redis.call('HSET', rec, 'final', ARGV[i + 1], 'ended', ended)
      redis.call('ZADD', p .. 'ended', score, tag)
    else
      redis.call('SREM', p .. 'task:' .. ARGV[i], tag)
    end
  end
end
return 0
"""

_DELETE: Final = """
-- ARGV: prefix, tag.
return drop(ARGV[2])
"""

_FORGET: Final = """
-- ARGV: prefix, name (a task id or a tag), at (JSON), at (a score); how many were marked.
-- A forgotten record leaves its owner's set (no claim takes it) and keeps its key until purged.
local tags = redis.call('SMEMBERS', p .. 'task:' .. ARGV[2])
if redis.call('EXISTS', p .. 'rec:' .. ARGV[2]) == 1 then tags[#tags + 1] = ARGV[2] end
local marked, seen = 0, {}
for _, tag in ipairs(tags) do
  local rec = p .. 'rec:' .. tag
  if not seen[tag] and redis.call('EXISTS', rec) == 1 and redis.call('HEXISTS', rec, 'forgotten') == 0 then
    redis.call('HSET', rec, 'forgotten', ARGV[3])
    if redis.call('HEXISTS', rec, 'ended') == 0 then
      redis.call('HSET', rec, 'ended', ARGV[3])
      redis.call('ZADD', p .. 'ended', ARGV[4], tag)
    end
    local owner = redis.call('HGET', rec, 'owner')
    if owner then
      redis.call('SREM', p .. 'owner:' .. owner, tag)
      if redis.call('SCARD', p .. 'owner:' .. owner) == 0 then redis.call('SREM', p .. 'owners', owner) end
    end
    marked = marked + 1
  end
  seen[tag] = true
end
return marked
"""

_PURGE: Final = """
-- ARGV: prefix, ended before (exclusive); how many records went.
local gone = 0
for _, tag in ipairs(redis.call('ZRANGEBYSCORE', p .. 'ended', '-inf', '(' .. ARGV[2])) do
  gone = gone + drop(tag)
  redis.call('ZREM', p .. 'ended', tag)
end
return gone
"""

_CLAIM: Final = """
-- ARGV: prefix, owner, lease in milliseconds. Returns a flat list: tag, hash, tag, hash, ...
local owner = ARGV[2]
local mine = p .. 'owner:' .. owner
redis.call('SET', p .. 'lease:' .. owner, '1', 'PX', ARGV[3])
for _, other in ipairs(redis.call('SMEMBERS', p .. 'owners')) do
  if other ~= owner and redis.call('EXISTS', p .. 'lease:' .. other) == 0 then
    for _, tag in ipairs(redis.call('SMEMBERS', p .. 'owner:' .. other)) do
      local rec = p .. 'rec:' .. tag
      if redis.call('EXISTS', rec) == 1 and redis.call('HEXISTS', rec, 'forgotten') == 0 then
        redis.call('HSET', rec, 'owner', owner)
        redis.call('SADD', mine, tag)
      end
    end
    redis.call('DEL', p .. 'owner:' .. other)
    redis.call('SREM', p .. 'owners', other)
  end
end
local out = {}
for _, tag in ipairs(redis.call('SMEMBERS', mine)) do
  local held = redis.call('HGETALL', p .. 'rec:' .. tag)
  if #held > 0 and redis.call('HEXISTS', p .. 'rec:' .. tag, 'forgotten') == 0 then
    out[#out + 1] = tag
    out[#out + 1] = held
  else
    redis.call('SREM', mine, tag)
  end
end
if #out > 0 then redis.call('SADD', p .. 'owners', owner) else redis.call('SREM', p .. 'owners', owner) end
return out
"""


class RedisStore:
    """Records in Redis: replicas on any machine share them, claims are atomic, a lease is a
    key with a TTL. How durable a record is depends on the server: with `appendonly yes` it
    survives a Redis restart (`appendfsync everysec`: up to a second of writes may be lost
    with the machine); without persistence a Redis restart loses every record.

    `url_or_client` is a `redis://`/`rediss://`/`unix://` URL (the store builds its client on
    first use, with a pool of up to 50 connections that operations wait for, and closes it in
    `close()`) or a `redis.asyncio.Redis` (used as is, never closed by the store). Every key
    starts with `namespace` and a colon. It is also the replicas' Bus: `publish`/`subscribe`
    on a pub/sub channel of the namespace.
    """

    def __init__(
        self,
        url_or_client: str | redis.asyncio.Redis,
        *,
        namespace: str = "mjasync",
        lease: float = DEFAULT_LEASE,
    ) -> None:
        try:
            import redis.asyncio  # noqa: F401  (an optional extra: imported on use only)
        except ImportError as exc:
            raise ImportError(_MISSING) from exc
        if not namespace:
            raise ValueError("namespace must not be empty")
        if not lease > 0:
            raise ValueError(f"lease must be positive seconds, got {lease!r}")
        self.namespace = namespace
        self.lease = lease
        self._prefix = f"{namespace}:"
        self._url: str | None = None
        self._client: redis.asyncio.Redis | None = None
        if isinstance(url_or_client, str):
            self._url = url_or_client
        else:
            self._client = url_or_client
        self._owns_client = self._url is not None
        self._scripts: dict[str, Any] = {}
        self._closed = False

    def __repr__(self) -> str:
        if self._url is not None:
            where = f"url={redact_url(self._url)!r}"
        else:
            where = f"client={_describe(self._client)}"
        return f"<mjasync.RedisStore {where} namespace={self.namespace!r}{' closed' if self._closed else ''}>"

    async def add(self, record: JobRecord) -> JobRecord:
        fields = _fields(record)
        args = [
            record.tag, record.owner, _opt(record.idempotency_key), _opt(record.task_id),
            _opt(None if record.ended is None else _score(record.ended)),
            *(item for pair in fields.items() for item in pair),
        ]
        held = await self._run("add", args)
        if not held:
            return record
        tag, values = held
        return self._decode(_text(tag), values)

    async def get(self, tag: str) -> JobRecord | None:
        client = self._use()
        try:
            values = await client.hgetall(self._prefix + "rec:" + tag)
        except Exception as exc:
            raise self._fail(exc) from exc
        return self._decode(tag, values) if values else None

    async def set_sent(self, tag: str, *, sent_at: float, may_resend: bool) -> None:
        await self._run("update", [tag, "", "sent", json.dumps([sent_at, may_resend])])

    async def set_task_id(self, tag: str, task_id: str) -> None:
        await self._run("update", [tag, _opt(task_id), "task_id", task_id, "body", "{}"])

    async def finish(self, infos: Sequence[TaskInfo], at: float) -> None:
        if not infos:
            return
        try:
            ended = json.dumps(at)
            pairs = [item for info in infos for item in (info.id, _dumps(unstructure(info)))]
        except Exception as exc:
            raise StoreError(f"{self._where()}: a final snapshot cannot be stored: {exc}") from exc
        await self._run("finish", [ended, _score(at), *pairs])

    async def delete(self, tag: str) -> None:
        await self._run("delete", [tag])

    async def forget(self, name: str, at: float) -> int:
        return int(await self._run("forget", [name, json.dumps(at), _score(at)]))

    async def claim(self, owner: str) -> list[JobRecord]:
        flat = await self._run("claim", [owner, str(_millis(self.lease))])
        claimed = []
        for tag, values in zip(flat[::2], flat[1::2], strict=True):
            record = self._readable(_text(tag), values)
            if record is not None:
                claimed.append(record)
        claimed.sort(key=lambda r: (r.created, r.tag))
        return claimed

    async def renew(self, owner: str) -> None:
        client = self._use()
        try:
            await client.set(self._prefix + "lease:" + owner, "1", px=_millis(self.lease))
        except Exception as exc:
            raise self._fail(exc) from exc

    async def purge(self, ended_before: float) -> int:
        return int(await self._run("purge", [_score(ended_before)]))

    async def publish(self, message: bytes) -> None:
        client = self._use()
        try:
            await client.publish(self._prefix + "bus", message)
        except Exception as exc:
            raise self._fail(exc) from exc

    async def subscribe(self) -> AsyncIterator[bytes]:
        """The messages published on this namespace's channel from the moment the subscription
        is made (the first step of the iteration) on; StoreError when its connection fails."""
        client = self._use()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            try:
                await pubsub.subscribe(self._prefix + "bus")
            except Exception as exc:
                raise self._fail(exc) from exc
            while True:
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_LISTEN_STEP)
                except Exception as exc:
                    raise self._fail(exc) from exc
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise asyncio.CancelledError  # redis-py swallowed it: end the subscription anyway
                if message is not None and message.get("type") == "message":
                    data = message["data"]
                    yield data.encode() if isinstance(data, str) else bytes(data)
        finally:
            try:
                async with asyncio.timeout(_CLOSE_TIMEOUT):  # a torn connection must not hold close()
                    await pubsub.aclose()
            except Exception as exc:
                logger.debug("closing a Redis subscription failed: %s", exc)

    async def close(self) -> None:
        """Close the client the store built from its URL (a client passed in stays open); using
        the store afterwards raises StoreError. Calling it again does nothing."""
        self._closed = True
        client, self._scripts = self._client, {}
        if self._owns_client and client is not None:
            self._client = None
            try:
                await client.aclose()
            except Exception as exc:
                raise self._fail(exc) from exc

    # -- internals -------------------------------------------------------------------------------

    def _use(self) -> redis.asyncio.Redis:
        """The client (built from the URL on first use)."""
        if self._closed:
            raise StoreError(f"{self._where()} is closed")
        if self._client is None:
            import redis.asyncio

            assert self._url is not None
            try:
                # A pool that waits for a free connection (redis-py's default pool raises
                # past its size: a burst of submits would fail); the URL may set its size.
                pool = redis.asyncio.BlockingConnectionPool.from_url(
                    self._url, max_connections=_POOL_SIZE, timeout=_POOL_TIMEOUT
                )
                self._client = redis.asyncio.Redis.from_pool(pool)
            except Exception as exc:  # a URL it cannot read
                raise self._fail(exc) from exc
        return self._client

    async def _run(self, name: str, args: Sequence[str]) -> Any:
        """Run one of the scripts with the key prefix and `args`; its reply."""
        client = self._use()
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = client.register_script(_LUA_COMMON + _SCRIPTS[name])
        try:
            return await script(args=[self._prefix, *args])
        except Exception as exc:
            raise self._fail(exc) from exc

    def _where(self) -> str:
        where = redact_url(self._url) if self._url is not None else _describe(self._client)
        return f"Redis store {where} (namespace {self.namespace!r})"

    def _fail(self, exc: Exception) -> BaseException:
        """What to raise for `exc`: a StoreError, or CancelledError when the current task is being
        cancelled (redis-py may turn a cancellation that tears down a connection mid-command into
        a connection error; wrapped in StoreError, which callers handle, the cancel would be lost
        and a loop such as the lease renewal would never end)."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            return asyncio.CancelledError()
        return self._error(exc)

    def _error(self, exc: Exception) -> StoreError:
        return StoreError(f"{self._where()}: {type(exc).__name__}: {exc}")

    def _decode(self, tag: str, values: object) -> JobRecord:
        """The record of one hash; StoreError when it is not one (corrupt, or not mjasync's)."""
        try:
            fields = _pairs(values)
            record = decode_record(fields["record"])
            changes: dict[str, Any] = {"owner": fields.get("owner", record.owner)}
            if "body" in fields:
                changes["body"] = json.loads(fields["body"])
            if "task_id" in fields:
                changes["task_id"] = fields["task_id"]
            if "sent" in fields:
                changes["sent_at"], changes["may_resend"] = json.loads(fields["sent"])
            if "final" in fields:
                changes["final"] = structure(json.loads(fields["final"]), TaskInfo)
            if "ended" in fields:
                changes["ended"] = json.loads(fields["ended"])
            if "forgotten" in fields:
                changes["forgotten"] = json.loads(fields["forgotten"])
            record = attrs.evolve(record, **changes)
            if not isinstance(record.body, dict) or not isinstance(record.owner, str):
                raise TypeError("a record needs a body object and an owner")
            return record
        except Exception as exc:
            raise StoreError(f"{self._where()}: record {tag!r} is unreadable: {exc}") from exc

    def _readable(self, tag: str, values: object) -> JobRecord | None:
        """The record of a hash, or None (with a warning) when it does not decode."""
        try:
            return self._decode(tag, values)
        except StoreError as exc:
            logger.warning("%s; skipped", exc)
            return None


_SCRIPTS: Final = {
    "add": _ADD, "update": _UPDATE, "finish": _FINISH, "delete": _DELETE, "forget": _FORGET,
    "purge": _PURGE, "claim": _CLAIM,
}


def _fields(record: JobRecord) -> dict[str, str]:
    """The hash of a new record (see the module's docstring)."""
    fields = {
        "record": encode_record(attrs.evolve(record, body={})),
        "body": _dumps(record.body),
        "owner": record.owner,
    }
    if record.idempotency_key is not None:
        fields["key"] = record.idempotency_key
    if record.task_id is not None:
        fields["task_id"] = record.task_id
    if record.sent_at is not None or not record.may_resend:
        fields["sent"] = json.dumps([record.sent_at, record.may_resend])
    if record.final is not None:
        fields["final"] = _dumps(unstructure(record.final))
    if record.ended is not None:
        fields["ended"] = json.dumps(record.ended)
    if record.forgotten is not None:
        fields["forgotten"] = json.dumps(record.forgotten)
    return fields


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _opt(value: str | None) -> str:
    """An optional script argument: '' for None, else the value behind a marker character."""
    return "" if value is None else "=" + value


def _score(seconds: float) -> str:
    """Epoch seconds as a sorted set score Redis reads (repr keeps every digit)."""
    value = float(seconds)
    return "inf" if value == float("inf") else "-inf" if value == float("-inf") else repr(value)


def _millis(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"Redis answered {type(value).__name__}, not text")


def _pairs(values: object) -> dict[str, str]:
    """A hash as a dict of text, from HGETALL (a dict) or a script (a flat list); bytes or str,
    whichever the client's decode_responses gives."""
    items: Iterable[tuple[object, object]]
    if isinstance(values, Mapping):
        items = values.items()
    elif isinstance(values, list):
        items = zip(values[::2], values[1::2], strict=True)
    else:
        raise TypeError(f"Redis answered {type(values).__name__} for a hash")
    return {_text(key): _text(value) for key, value in items}


def _describe(client: object) -> str:
    """host:port/db of a client, without its password."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    if not isinstance(kwargs, Mapping):
        return "redis"
    if "path" in kwargs:
        return f"unix:{kwargs['path']}/{kwargs.get('db', 0)}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
