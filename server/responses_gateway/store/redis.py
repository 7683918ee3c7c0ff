"""Redis response store, for several replicas: serialized protobuf blobs in hashes, lists and sorted sets.

Keys, all under `rg:` in the URL's database (`{rid}` a response id):
  rg:resp:{rid}     hash: blob, deployment, upstream_id, created_at, running (0/1), owner, lease_until
  rg:items:{rid}    list of input item blobs, in input order
  rg:itempos:{rid}  hash item id -> its position in that list (the cursors of list_input_items)
  rg:events:{rid}   sorted set of event blobs scored by sequence number
  rg:running        sorted set of the running responses' ids scored by lease_until (claim_expired)
  rg:created        sorted set of every response id scored by created_at (expire)
With a `ttl`, a response's keys expire at created_at + ttl (PEXPIREAT), so Redis drops old responses on
its own; `expire()` still deletes by age, and the index entries left behind.

Each operation is one round trip and atomic: a MULTI/EXEC pipeline for `put`, whose writes are
unconditional; elsewhere a Lua script, where writes depend on what is stored (an update of a response
that is gone must not recreate half of it; a claim must see and take a lease at once, so two replicas
never both claim one), and for reads and deletes, which a full Redis still runs (it refuses a whole
MULTI when out of memory, and deleting is what frees memory). The scripts
that find their keys on the way (claim, expire) name keys they were not passed, which standalone Redis
and its replicas allow and Redis Cluster does not: this store is for one primary.

Signals: every write publishes the response id on `rg:{db}:changed` in the same round trip, a cancel
request on `rg:{db}:cancel` (pub/sub channels ignore the database number, hence the db in the name).
One pub/sub connection per store, in a listener task, feeds `LocalSignals`; when it drops, the listener
reconnects with backoff and then wakes every watcher, since changes may have been missed meanwhile.

Failures of Redis itself (cannot connect, timeouts, out of memory, a read-only replica, loading its
data) leave here as `StoreUnavailable` with a short reason (no host, password or command) and are
passed to `on_unavailable`; other errors (a wrong type, a script bug) are ours and stay what they are.
The client reconnects on its own once Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from responses_gateway.aio import cancel_and_wait
from responses_gateway.contract.items import item_id
from responses_gateway.store.base import (
    ItemPage,
    Order,
    StoredResponse,
    StoreUnavailable,
    is_running,
)
from responses_gateway.store.signals import LocalSignals, Signalling
from responses_gateway.v1 import events_pb2, items_pb2, response_pb2

log = logging.getLogger(__name__)

_RESP, _ITEMS, _ITEMPOS, _EVENTS = "rg:resp:", "rg:items:", "rg:itempos:", "rg:events:"
_RUNNING, _CREATED, _PROBE = "rg:running", "rg:created", "rg:probe"

# A dead server must fail a call in seconds, not hang a request; connecting is quick on a live one.
_CONNECT_TIMEOUT = 2.0
_SOCKET_TIMEOUT = 5.0
_OPEN_TIMEOUT = 3.0
# The listener pings when idle and reconnects when nothing (not even the pong) came back for a while:
# a connection silently cut (no RST) would otherwise never end. Reconnects back off up to a cap.
_PING_EVERY = 5.0
_SILENT_LIMIT = 3 * _PING_EVERY
_BACKOFF_FIRST, _BACKOFF_CAP = 0.05, 2.0
# expire() deletes in batches, one script each, so it never holds Redis for long.
_EXPIRE_BATCH = 500

# Server replies that mean Redis cannot serve now (its state, not our command): the error's code.
_FAULT_REASONS = {
    "OOM": "Redis is out of memory",
    "READONLY": "Redis is a read-only replica",
    "LOADING": "Redis is loading its data",
    "MISCONF": "Redis refuses writes (its snapshot failed)",
    "BUSY": "Redis is busy running a script",
    "MASTERDOWN": "Redis lost its primary",
    "NOREPLICAS": "Redis has not enough replicas",
    "CLUSTERDOWN": "Redis Cluster is down",
    "TRYAGAIN": "Redis asks to try again",
    "NOAUTH": "Redis wants a password",
    "WRONGPASS": "Redis refused the credentials",
    "NOPERM": "Redis refused the command to this user",
}

# --- scripts (KEYS are passed where known; ARGV strings go to Redis unchanged, no Lua numbers) ---

# A fresh response (like SQLite's INSERT OR REPLACE, whose cascade drops the event log too), in one
# command: a MULTI of the same writes costs the client a command and a reply each. Lists are pushed in
# slices (Lua's unpack has a bounded stack). The shebang makes a full Redis refuse the whole script
# (without `allow-oom`), rather than only a first write that is not the DEL.
_PUT = """#!lua
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], 'blob', ARGV[1], 'deployment', ARGV[2], 'upstream_id', ARGV[3],
  'created_at', ARGV[4], 'running', ARGV[5], 'owner', ARGV[6], 'lease_until', ARGV[7], 'key_id', ARGV[11])
local n = tonumber(ARGV[12])
local first, last = 13, 12 + n
for i = first, last, 1000 do redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, last))) end
for i = last + 1, #ARGV, 1000 do redis.call('HSET', KEYS[3], unpack(ARGV, i, math.min(i + 999, #ARGV))) end
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[8])
if ARGV[5] == '1' then redis.call('ZADD', KEYS[6], ARGV[7], ARGV[8]) else redis.call('ZREM', KEYS[6], ARGV[8]) end
if ARGV[9] ~= '' then
  for k = 1, 3 do redis.call('PEXPIREAT', KEYS[k], ARGV[9]) end
end
if ARGV[10] ~= '' then redis.call('PUBLISH', ARGV[10], ARGV[8]) end
"""

_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[2] == '1' then
    redis.call('HSET', KEYS[1], 'blob', ARGV[1])
  else
    redis.call('HSET', KEYS[1], 'blob', ARGV[1], 'running', '0', 'owner', '', 'lease_until', '0')
    redis.call('ZREM', KEYS[2], ARGV[3])
  end
end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[3]) end
"""

# Replace semantics per sequence number; the log expires with its response. The ZADD comes first:
# Redis refuses a script's first write when out of memory, and lets every later one through.
_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  for i = 3, #ARGV, 2 do
    local old = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[i], ARGV[i])
    redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1])
    for _, blob in ipairs(old) do
      if blob ~= ARGV[i + 1] then redis.call('ZREM', KEYS[2], blob) end
    end
  end
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
"""

# A response and its input items at one instant (read-only, so it works on a full Redis too).
_GET = """
local f = redis.call('HMGET', KEYS[1], 'blob', 'deployment', 'upstream_id', 'owner', 'lease_until', 'key_id')
if not f[1] then return {} end
for _, blob in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do f[#f + 1] = blob end
return f
"""

# Deletes only: a full Redis runs it (it frees memory), which it does not do for a MULTI.
_DELETE = """
local gone = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return gone
"""

# ARGV: after, before ('' or '=' .. item id), limit, '1' for descending. Returns {0} when the response
# is not stored, {2, cursor} for an unknown cursor, else {1, blobs in listing order (limit + 1 at most)}.
_PAGE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local lo, hi = 0, redis.call('LLEN', KEYS[2]) - 1
local desc = ARGV[4] == '1'
for i = 1, 2 do
  if ARGV[i] ~= '' then
    local cursor = string.sub(ARGV[i], 2)
    local p = redis.call('HGET', KEYS[3], cursor)
    if not p then return {2, cursor} end
    p = tonumber(p)
    -- in the listing order `after` comes before the page and `before` after it
    if (i == 1) ~= desc then lo = math.max(lo, p + 1) else hi = math.min(hi, p - 1) end
  end
end
local out = {1}
if lo > hi then return out end
local want = tonumber(ARGV[3]) + 1
if desc then
  local got = redis.call('LRANGE', KEYS[2], math.max(lo, hi - want + 1), hi)
  for j = #got, 1, -1 do out[#out + 1] = got[j] end
else
  local got = redis.call('LRANGE', KEYS[2], lo, math.min(hi, lo + want - 1))
  for j = 1, #got do out[#out + 1] = got[j] end
end
return out
"""

# KEYS: rg:running, then each response's hash; ARGV: owner, until, then the ids.
_RENEW = """
for i = 2, #KEYS do
  local f = redis.call('HMGET', KEYS[i], 'running', 'owner')
  if f[1] == '1' and f[2] == ARGV[1] then
    redis.call('HSET', KEYS[i], 'lease_until', ARGV[2])
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i + 1])
  end
end
"""

# ARGV: hash prefix, the bound on lease_until, owner, until. Returns deployment, upstream_id, blob per
# claimed response; drops index entries whose response ended or expired.
_CLAIM = """
local out = {}
for _, rid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])) do
  local key = ARGV[1] .. rid
  local f = redis.call('HMGET', key, 'running', 'deployment', 'upstream_id', 'blob')
  if f[1] == '1' then
    redis.call('HSET', key, 'owner', ARGV[3], 'lease_until', ARGV[4])
    redis.call('ZADD', KEYS[1], ARGV[4], rid)
    out[#out + 1] = f[2]; out[#out + 1] = f[3]; out[#out + 1] = f[4]
  else
    redis.call('ZREM', KEYS[1], rid)
  end
end
return out
"""

# KEYS: rg:created, rg:running; ARGV: the four key prefixes, the bound on created_at, the batch size.
# Returns how many ids it looked at and how many responses were still there.
_EXPIRE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[5], 'LIMIT', 0, tonumber(ARGV[6]))
local gone = 0
for _, rid in ipairs(ids) do
  gone = gone + redis.call('DEL', ARGV[1] .. rid)
  redis.call('DEL', ARGV[2] .. rid, ARGV[3] .. rid, ARGV[4] .. rid)
  redis.call('ZREM', KEYS[1], rid)
  redis.call('ZREM', KEYS[2], rid)
end
return {#ids, gone}
"""


class _Guard:
    """One operation's time limit and error mapping (RedisStore._guard).

    The time limit is the event loop's (asyncio.timeout), not redis-py's `socket_timeout`: with that
    set, redis-py sends every command through `asyncio.wait_for`, which on Python 3.11 runs the send in
    a task of its own (a loop turn and a task per command). redis-py drops a connection whose command
    was interrupted, so a cancelled command leaves no half-read reply behind."""

    __slots__ = ("_report", "_store", "_timeout")

    def __init__(self, store: RedisStore, report: bool) -> None:
        self._store, self._report = store, report
        self._timeout = asyncio.timeout(_SOCKET_TIMEOUT)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: Any) -> None:
        try:
            await self._timeout.__aexit__(kind, e, tb)
        except TimeoutError as expired:
            raise self._store._failed("Redis did not answer in time", self._report) from expired
        if isinstance(e, rx.RedisError):
            why = _fault_reason(e)
            if why is not None:
                raise self._store._failed(why, self._report) from e


def _fault_reason(e: rx.RedisError) -> str | None:
    """The short reason when `e` is Redis's own failure; None when it is a bug on our side."""
    if isinstance(e, rx.TimeoutError):
        return "Redis did not answer in time"
    if isinstance(e, rx.ConnectionError) and not isinstance(e, rx.BusyLoadingError | rx.AuthenticationError):
        if isinstance(e, rx.MaxConnectionsError):
            return "no Redis connection is free"
        # The socket's error, without the address asyncio puts in its message.
        cause = e.__cause__ or e.__context__
        if isinstance(cause, ssl.SSLError):
            return f"the TLS handshake with Redis failed ({cause.reason or 'no reason given'})"
        if isinstance(cause, socket.gaierror) and cause.strerror:
            return f"cannot connect to Redis ({cause.strerror.lower()})"
        if isinstance(cause, OSError) and cause.errno:
            return f"cannot connect to Redis ({os.strerror(cause.errno).lower()})"
        return "the connection to Redis was lost"
    if not isinstance(e, rx.ResponseError | rx.ConnectionError):
        return None
    # redis-py keeps the code in `status_code` for the codes it knows; a pipeline prefixes the message.
    code = e.status_code or str(e).split(" ", 1)[0]
    if code not in _FAULT_REASONS and " caused error: " in str(e):
        code = str(e).split(" caused error: ", 1)[1].split(" ", 1)[0]
    if isinstance(e, rx.AuthenticationError) and code not in _FAULT_REASONS:
        code = "WRONGPASS"
    return _FAULT_REASONS.get(code)


async def _close(pubsub: PubSub) -> None:
    with contextlib.suppress(rx.RedisError, OSError):
        await pubsub.aclose()  # type: ignore[no-untyped-call]


def _score(x: float) -> str:
    return repr(float(x))


class RedisStore(Signalling):
    shared = True

    def __init__(
        self,
        url: str,
        *,
        ttl: float | None,
        on_unavailable: Callable[[StoreUnavailable], None] | None,
    ) -> None:
        self._url = url
        self._ttl = ttl
        self.on_unavailable = on_unavailable
        self._signals = LocalSignals()
        self._client: Redis | None = None
        self._listener_client: Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._changed_channel = self._cancel_channel = b""
        self._scripts: dict[str, AsyncScript] = {}

    # --- plumbing --------------------------------------------------------------------------------

    def _connect(self, retries: int, *, commands: bool) -> Redis:
        try:
            return Redis.from_url(
                self._url,
                decode_responses=False,
                socket_connect_timeout=_CONNECT_TIMEOUT,
                # Commands are timed by _Guard; the listener's reads by their own timeouts.
                socket_timeout=None if commands else _SOCKET_TIMEOUT,
                # Once, at once: a pooled connection that died with a restarted server is replaced on
                # the spot; more retries would only delay the failure of a server that is down.
                retry=Retry(NoBackoff(), retries, supported_errors=(rx.ConnectionError,)),
            )
        except ValueError as e:  # redis-py's messages about the URL's form carry no password
            raise StoreUnavailable(f"its url is not usable ({e})") from None

    @property
    def _redis(self) -> Redis:
        if self._client is None:
            raise RuntimeError("store is not open")
        return self._client

    def _guard(self, *, report: bool = True) -> _Guard:
        """`async with` around each operation: its time limit, and Redis's own failures as
        StoreUnavailable, told to `on_unavailable` (not at open: the caller of open reports that one)."""
        return _Guard(self, report)

    def _failed(self, why: str, report: bool) -> StoreUnavailable:
        error = StoreUnavailable(why)
        if report and self.on_unavailable is not None:
            self.on_unavailable(error)
        return error

    async def open(self) -> None:
        """Connect and subscribe: StoreUnavailable within a few seconds when Redis cannot be reached."""
        self._client = self._connect(retries=1, commands=True)
        # The listener sees every drop itself (no silent reconnect inside redis-py), to wake watchers.
        self._listener_client = self._connect(retries=0, commands=False)
        db = self._client.connection_pool.connection_kwargs.get("db", 0)
        self._changed_channel, self._cancel_channel = f"rg:{db}:changed".encode(), f"rg:{db}:cancel".encode()
        self._scripts = {
            name: self._client.register_script(text)
            for name, text in (
                ("put", _PUT),
                ("get", _GET),
                ("delete", _DELETE),
                ("update", _UPDATE),
                ("append", _APPEND),
                ("page", _PAGE),
                ("renew", _RENEW),
                ("claim", _CLAIM),
                ("expire", _EXPIRE),
            )
        }
        try:
            async with asyncio.timeout(_OPEN_TIMEOUT):
                async with self._guard(report=False):
                    await self._client.ping()
                    # Subscribed before open returns: a signal sent right after is not missed.
                    pubsub = await self._subscribe()
        except TimeoutError:
            raise StoreUnavailable("Redis did not answer in time") from None
        except rx.RedisError as e:  # e.g. the url's database does not exist: this store cannot open
            raise StoreUnavailable(f"Redis refused the session ({str(e)[:120]})") from e
        self._listener = asyncio.create_task(self._listen(pubsub), name="redis-store-listener")

    async def close(self) -> None:
        task, self._listener = self._listener, None
        await cancel_and_wait(task)
        for client in (self._listener_client, self._client):
            if client is not None:
                with contextlib.suppress(rx.RedisError, OSError):
                    await client.aclose()
        self._client = self._listener_client = None

    async def _script(self, name: str, keys: list[str], args: list[str | bytes]) -> Any:
        async with self._guard():
            return await self._scripts[name](keys=keys, args=args)

    # --- responses -------------------------------------------------------------------------------

    def _expire_at_ms(self, created_at: float) -> int | None:
        if self._ttl is None:
            return None
        # A response without a creation time counts from now, rather than vanishing at once.
        base = created_at if created_at > 0 else time.time()
        return int((base + self._ttl) * 1000)

    async def put(self, record: StoredResponse) -> None:
        r = record.response
        rid = r.id
        running = is_running(r)
        resp, items, itempos = _RESP + rid, _ITEMS + rid, _ITEMPOS + rid
        positions: dict[str, int] = {}
        for i, item in enumerate(record.input_items):
            positions.setdefault(item_id(item), i)  # the first of a repeated id, as SQLite finds it
        positions.pop("", None)
        expire_at = self._expire_at_ms(r.created_at)
        args: list[str | bytes] = [
            r.SerializeToString(),
            record.deployment,
            record.upstream_id,
            _score(r.created_at),
            "1" if running else "0",
            record.owner if running else "",
            _score(record.lease_until if running else 0.0),
            rid,
            "" if expire_at is None else str(expire_at),
            self._changed_channel if r.background else b"",  # only background responses have watchers
            record.key_id,
            str(len(record.input_items)),
            *(item.SerializeToString() for item in record.input_items),
        ]
        for key, position in positions.items():
            args += [key, str(position)]
        await self._script("put", [resp, items, itempos, _EVENTS + rid, _CREATED, _RUNNING], args)

    async def update_response(self, response: response_pb2.Response) -> None:
        rid = response.id
        flag = "1" if is_running(response) else "0"
        await self._script(
            "update",
            [_RESP + rid, _RUNNING],
            [response.SerializeToString(), flag, rid, self._changed_channel if response.background else b""],
        )

    async def get(self, response_id: str) -> StoredResponse | None:
        got = await self._script("get", [_RESP + response_id, _ITEMS + response_id], [])
        if not got:
            return None
        fields, blobs = got[:6], got[6:]
        blob, deployment, upstream_id, owner, lease_until, key_id = fields
        return StoredResponse(
            response=response_pb2.Response.FromString(blob),
            input_items=[items_pb2.Item.FromString(b) for b in blobs],
            deployment=deployment.decode(),
            upstream_id=upstream_id.decode(),
            owner=owner.decode(),
            lease_until=float(lease_until),
            key_id=key_id.decode() if key_id else "",  # written before keys existed: none
        )

    async def delete(self, response_id: str) -> bool:
        keys = [_RESP, _ITEMS, _ITEMPOS, _EVENTS]
        gone = await self._script(
            "delete",
            [*(k + response_id for k in keys), _CREATED, _RUNNING],
            [response_id, self._changed_channel],
        )
        return bool(gone)

    async def list_input_items(
        self, response_id: str, *, after: str | None, before: str | None, limit: int, order: Order
    ) -> ItemPage | None:
        keys = [_RESP + response_id, _ITEMS + response_id, _ITEMPOS + response_id]
        cursors = ["" if c is None else "=" + c for c in (after, before)]
        got = await self._script("page", keys, [*cursors, str(limit), "1" if order == "desc" else "0"])
        status, rest = got[0], got[1:]
        if status == 0:
            return None
        if status == 2:
            raise KeyError(rest[0].decode())
        return ItemPage(
            items=[items_pb2.Item.FromString(b) for b in rest[:limit]], has_more=len(rest) > limit
        )

    async def append_events(self, response_id: str, events: list[events_pb2.ResponseStreamEvent]) -> None:
        if not events:
            return
        args: list[str | bytes] = [self._changed_channel, response_id]
        for e in events:
            args += [str(e.sequence_number), e.SerializeToString()]
        # A response deleted meanwhile gets no orphan log (SQLite's foreign key refuses it too).
        await self._script("append", [_RESP + response_id, _EVENTS + response_id], args)

    async def read_events(self, response_id: str, after: int) -> list[events_pb2.ResponseStreamEvent]:
        async with self._guard():
            blobs: list[bytes] = await self._redis.zrangebyscore(_EVENTS + response_id, f"({after}", "+inf")  # type: ignore[assignment]  # typed for every reply shape
        return [events_pb2.ResponseStreamEvent.FromString(b) for b in blobs]

    async def probe(self) -> None:
        # A read, and a write that a full or read-only Redis refuses; the key expires by itself.
        pipe = self._redis.pipeline(transaction=False)
        pipe.exists(_CREATED)
        pipe.set(_PROBE, _score(time.time()), px=60_000)
        async with self._guard():
            await pipe.execute()

    # --- leases ----------------------------------------------------------------------------------

    async def renew(self, owner: str, response_ids: list[str], until: float) -> None:
        if not response_ids:
            return
        keys = [_RUNNING, *[_RESP + rid for rid in response_ids]]
        await self._script("renew", keys, [owner, _score(until), *response_ids])

    async def claim_expired(self, owner: str, now: float, until: float) -> list[StoredResponse]:
        bound = "+inf" if math.isinf(now) else f"({_score(now)}"
        flat = await self._script("claim", [_RUNNING], [_RESP, bound, owner, _score(until)])
        claimed = []
        for i in range(0, len(flat), 3):
            deployment, upstream_id, blob = flat[i : i + 3]
            response = response_pb2.Response.FromString(blob)
            claimed.append(
                StoredResponse(response, [], deployment.decode(), upstream_id.decode(), owner, until)
            )
        return claimed

    async def expire(self, created_before: float) -> int:
        prefixes: list[str | bytes] = [_RESP, _ITEMS, _ITEMPOS, _EVENTS]
        bound = f"({_score(created_before)}"
        total = 0
        while True:
            seen, gone = await self._script(
                "expire", [_CREATED, _RUNNING], [*prefixes, bound, str(_EXPIRE_BATCH)]
            )
            total += int(gone)
            if int(seen) < _EXPIRE_BATCH:
                return total

    # --- signals ---------------------------------------------------------------------------------

    async def request_cancel(self, response_id: str) -> None:
        async with self._guard():
            await self._redis.publish(self._cancel_channel, response_id)

    async def _subscribe(self) -> PubSub:
        """A pub/sub connection subscribed to both channels (their confirmations received)."""
        if self._listener_client is None:
            raise RuntimeError("store is not open")
        pubsub = self._listener_client.pubsub()
        try:
            await pubsub.subscribe(self._changed_channel, self._cancel_channel)
            confirmed = 0
            while confirmed < 2:
                message = await pubsub.get_message(timeout=_SOCKET_TIMEOUT)
                if message is None:
                    raise rx.TimeoutError("no confirmation of the subscription")
                if message["type"] == "subscribe":
                    confirmed += 1
                else:
                    self._dispatch(message)
        except BaseException:
            await _close(pubsub)
            raise
        return pubsub

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message["type"] != "message":
            return
        try:
            rid = message["data"].decode()
            if message["channel"] == self._cancel_channel:
                self._signals.cancel(rid)
            else:
                self._signals.notify(rid)
        except Exception:  # a failing callback (or a stray payload) must not end the listener
            log.exception("a Redis store signal could not be delivered")

    async def _listen(self, pubsub: PubSub | None) -> None:
        delay = _BACKOFF_FIRST
        try:
            while True:
                try:
                    if pubsub is None:
                        pubsub = await self._subscribe()
                        log.info("the Redis store's pub/sub connection is back")
                        delay = _BACKOFF_FIRST
                        self._signals.notify_all()  # what changed while it was down was not heard
                    await self._relay(pubsub)
                except (rx.RedisError, OSError) as e:
                    if pubsub is not None:  # it was up: say so once, not at every retry
                        why = _fault_reason(e) if isinstance(e, rx.RedisError) else None
                        log.warning("the Redis store's pub/sub connection was lost (%s)", why or e)
                        await _close(pubsub)
                        pubsub = None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _BACKOFF_CAP)
        finally:
            if pubsub is not None:
                await _close(pubsub)

    async def _relay(self, pubsub: PubSub) -> None:
        """Hand messages to the signals until the connection fails (raises)."""
        heard = pinged = time.monotonic()
        while True:
            message = await pubsub.get_message(timeout=_PING_EVERY)
            now = time.monotonic()
            if message is not None:
                heard = now
                self._dispatch(message)
            elif now - heard > _SILENT_LIMIT:
                raise rx.ConnectionError("the pub/sub connection went silent")
            if now - max(heard, pinged) >= _PING_EVERY:
                pinged = now
                await pubsub.ping()
