"""PostgreSQL response store, for several replicas: the same rows as SQLite's, plus LISTEN/NOTIFY.

Driver: asyncpg (binary protocol, statements prepared and cached per connection, its own pool, and
LISTEN through `add_listener`). Every operation is one statement, so one round trip: a write and its
NOTIFY go together in a data-modifying CTE, and a read of a response brings its input items as an
array. Notifications are sent on commit, so a replica woken by one reads the committed rows.

Schema changes are numbered migrations (`_MIGRATIONS`), applied at start-up in one transaction under
an advisory lock: replicas starting together apply each once, in order, and the others wait.

Failures of the server or the connection (refused, dropped, admin shutdown, disk full, read-only) leave
here as `StoreUnavailable` and go to `on_unavailable`; the pool reconnects on the next operation, and
the listener reconnects by itself (waking every watcher, since a notification may have been missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

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
T = TypeVar("T")

CHANGED, CANCEL = "rg_changed", "rg_cancel"
_LOCK_KEY = 0x52475354  # pg_advisory_xact_lock key of the migrations ("RGST")
_CONNECT_SECONDS = 5.0
_COMMAND_SECONDS = 10.0

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE rg_responses (
        id TEXT PRIMARY KEY,
        created_at DOUBLE PRECISION NOT NULL,
        deployment TEXT NOT NULL,
        upstream_id TEXT NOT NULL,
        response BYTEA NOT NULL,
        running BOOLEAN NOT NULL DEFAULT false,
        owner TEXT NOT NULL DEFAULT '',
        lease_until DOUBLE PRECISION NOT NULL DEFAULT 0
    );
    CREATE INDEX rg_responses_by_age ON rg_responses (created_at);
    CREATE INDEX rg_responses_running ON rg_responses (lease_until) WHERE running;
    CREATE TABLE rg_input_items (
        response_id TEXT NOT NULL REFERENCES rg_responses (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        item_id TEXT NOT NULL,
        item BYTEA NOT NULL,
        PRIMARY KEY (response_id, position)
    );
    CREATE INDEX rg_input_items_by_id ON rg_input_items (response_id, item_id);
    CREATE TABLE rg_events (
        response_id TEXT NOT NULL REFERENCES rg_responses (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        event BYTEA NOT NULL,
        PRIMARY KEY (response_id, seq)
    );
    CREATE TABLE rg_store_probe (id INTEGER PRIMARY KEY, at DOUBLE PRECISION NOT NULL);
    """,
    # Virtual keys (store/postgres_keys.py): who made a response, the keys, their counters and spend.
    2: """
    ALTER TABLE rg_responses ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
    CREATE TABLE rg_keys (
        key_id TEXT PRIMARY KEY,
        alias TEXT UNIQUE,
        user_id TEXT,
        team_id TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        body BYTEA NOT NULL
    );
    CREATE TABLE rg_counters (
        key_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        win BIGINT NOT NULL,
        value DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (key_id, kind, win)
    );
    CREATE TABLE rg_spend (
        day TEXT NOT NULL,
        key_id TEXT NOT NULL,
        team_id TEXT NOT NULL,
        end_user TEXT NOT NULL,
        model TEXT NOT NULL,
        spend DOUBLE PRECISION NOT NULL,
        requests BIGINT NOT NULL,
        input_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL,
        PRIMARY KEY (day, key_id, team_id, end_user, model)
    );
    """,
}

_PUT = f"""
WITH r AS (
    INSERT INTO rg_responses (id, created_at, deployment, upstream_id, response, running, owner, lease_until,
        key_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $13)
    ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at, deployment = excluded.deployment,
        upstream_id = excluded.upstream_id, response = excluded.response, running = excluded.running,
        owner = excluded.owner, lease_until = excluded.lease_until, key_id = excluded.key_id
    RETURNING id
), d AS (
    -- One statement's parts do not see each other's rows: replace positions in place, drop the rest.
    DELETE FROM rg_input_items WHERE response_id = $1 AND position >= cardinality($9::integer[])
), i AS (
    INSERT INTO rg_input_items (response_id, position, item_id, item)
    SELECT $1, t.position, t.item_id, t.item
    FROM unnest($9::integer[], $10::text[], $11::bytea[]) AS t (position, item_id, item)
    ON CONFLICT (response_id, position) DO UPDATE SET item_id = excluded.item_id, item = excluded.item
)
SELECT pg_notify('{CHANGED}', id) FROM r WHERE $12
"""
_UPDATE_RUNNING = f"""
WITH u AS (UPDATE rg_responses SET response = $2 WHERE id = $1 RETURNING id)
SELECT pg_notify('{CHANGED}', id) FROM u WHERE $3
"""
_UPDATE_ENDED = f"""
WITH u AS (
    UPDATE rg_responses SET response = $2, running = false, owner = '', lease_until = 0 WHERE id = $1
    RETURNING id
)
SELECT pg_notify('{CHANGED}', id) FROM u WHERE $3
"""
_GET = """
SELECT deployment, upstream_id, response, owner, lease_until, key_id,
    ARRAY(SELECT item FROM rg_input_items WHERE response_id = r.id ORDER BY position) AS items
FROM rg_responses r WHERE id = $1
"""
_DELETE = f"""
WITH d AS (DELETE FROM rg_responses WHERE id = $1 RETURNING id)
SELECT pg_notify('{CHANGED}', id) FROM d
"""
_APPEND = f"""
WITH i AS (
    INSERT INTO rg_events (response_id, seq, event)
    SELECT $1, t.seq, t.event FROM unnest($2::integer[], $3::bytea[]) AS t (seq, event)
    ON CONFLICT (response_id, seq) DO UPDATE SET event = excluded.event
    RETURNING 1
)
SELECT pg_notify('{CHANGED}', $1) WHERE EXISTS (SELECT 1 FROM i)
"""
_CLAIM = """
UPDATE rg_responses SET owner = $1, lease_until = $2
WHERE id IN (
    SELECT id FROM rg_responses WHERE running AND lease_until < $3 FOR UPDATE SKIP LOCKED
)
RETURNING deployment, upstream_id, response
"""


def _is_store_fault(e: BaseException) -> bool:
    """The server or the connection, not the statement: these pass once the server is back."""
    return isinstance(
        e,
        OSError
        | TimeoutError
        | asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.exceptions.InsufficientResourcesError  # disk full, out of memory, too many connections
        | asyncpg.exceptions.OperatorInterventionError  # admin shutdown, crash recovery, cannot connect now
        | asyncpg.exceptions.ReadOnlySQLTransactionError  # a standby, or default_transaction_read_only
        | asyncpg.exceptions.PostgresSystemError
        # The driver's own state machine, confused by a connection that went away mid-operation
        # ("cannot switch to state ...; another operation is in progress"): seen once under load
        # while the server was stopped.
        | asyncpg.InternalClientError,
    )


async def _no_reset(conn: asyncpg.Connection[Any]) -> None:
    return None


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _: event.set()


def _why(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "it did not answer in time"
    if isinstance(e, OSError):
        return f"cannot connect ({e.strerror or e})"
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


class PostgresStore(Signalling):
    shared = True

    def __init__(
        self,
        url: str,
        *,
        ttl: float | None = None,
        on_unavailable: Callable[[StoreUnavailable], None] | None = None,
    ) -> None:
        self._url = url
        self._ttl = ttl  # expiry is the lease upkeep's (store.expire), not the database's
        self.on_unavailable = on_unavailable
        self._pool: asyncpg.Pool[Any] | None = None
        self._signals = LocalSignals()
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def _run(self, op: Callable[[asyncpg.Pool[Any]], Awaitable[T]]) -> T:
        pool = self._pool
        if pool is None:
            raise RuntimeError("store is not open")
        try:
            return await op(pool)
        except Exception as e:
            if not _is_store_fault(e):
                raise
            error = StoreUnavailable(_why(e))
            if self.on_unavailable is not None:
                self.on_unavailable(error)
            raise error from e

    # --- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=1,
                max_size=16,
                timeout=_CONNECT_SECONDS,
                command_timeout=_COMMAND_SECONDS,
                # No session state is ever changed (no SET, temp tables or LISTEN on pooled
                # connections), so the reset query asyncpg runs on every release is a wasted round trip.
                reset=_no_reset,
            )
            assert self._pool is not None
            async with self._pool.acquire() as conn:
                await self._migrate(conn)
        except Exception as e:
            if not (_is_store_fault(e) or isinstance(e, asyncpg.PostgresError)):
                raise
            raise StoreUnavailable(_why(e)) from None
        self._listener = asyncio.create_task(self._listen(), name="postgres-listener")
        # Signals from the first operation on: wait for LISTEN (bounded; it retries by itself).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CONNECT_SECONDS):
                await self._listening.wait()

    @staticmethod
    async def _migrate(conn: asyncpg.pool.PoolConnectionProxy[Any]) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS rg_schema_migrations ("
                " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM rg_schema_migrations")}
            for version in sorted(v for v in _MIGRATIONS if v not in done):
                await conn.execute(_MIGRATIONS[version])
                await conn.execute("INSERT INTO rg_schema_migrations (version) VALUES ($1)", version)
                log.info("response store: applied PostgreSQL schema migration %d", version)

    async def close(self) -> None:
        task, self._listener = self._listener, None
        await cancel_and_wait(task)
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await pool.close()
            pool.terminate()

    async def _listen(self) -> None:
        """One connection LISTENs for every response's signals; reconnects with backoff."""
        delay = 0.1
        while True:
            conn: asyncpg.Connection[Any] | None = None
            try:
                conn = await asyncpg.connect(self._url, timeout=_CONNECT_SECONDS)
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(CHANGED, lambda *a: self._signals.notify(a[3]))
                await conn.add_listener(CANCEL, lambda *a: self._signals.cancel(a[3]))
                if self._listening.is_set():
                    self._signals.notify_all()  # reconnected: what changed meanwhile was not heard
                self._listening.set()
                delay = 0.1
                while not lost.is_set():
                    # A dead peer does not always close the socket: check the connection now and then.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(5):
                            await lost.wait()
                    if not lost.is_set():
                        async with asyncio.timeout(5):
                            await conn.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.debug("response store listener: %s; reconnecting", _why(e))
            finally:
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def probe(self) -> None:
        async def probe(pool: asyncpg.Pool[Any]) -> None:
            await pool.execute(
                "INSERT INTO rg_store_probe (id, at) VALUES (1, $1)"
                " ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                time.time(),
            )

        await self._run(probe)

    # --- responses ------------------------------------------------------------------------------

    async def put(self, record: StoredResponse) -> None:
        r = record.response
        running = is_running(r)
        items = record.input_items
        args = (
            r.id,
            float(r.created_at),
            record.deployment,
            record.upstream_id,
            r.SerializeToString(),
            running,
            record.owner if running else "",
            record.lease_until if running else 0.0,
            list(range(len(items))),
            [item_id(i) for i in items],
            [i.SerializeToString() for i in items],
            r.background,  # only background responses have watchers (base.py)
            record.key_id,
        )
        await self._run(lambda pool: pool.execute(_PUT, *args))

    async def update_response(self, response: response_pb2.Response) -> None:
        sql = _UPDATE_RUNNING if is_running(response) else _UPDATE_ENDED
        blob = response.SerializeToString()
        await self._run(lambda pool: pool.execute(sql, response.id, blob, response.background))

    async def get(self, response_id: str) -> StoredResponse | None:
        row = await self._run(lambda pool: pool.fetchrow(_GET, response_id))
        if row is None:
            return None
        return StoredResponse(
            response=response_pb2.Response.FromString(row["response"]),
            input_items=[items_pb2.Item.FromString(b) for b in row["items"]],
            deployment=row["deployment"],
            upstream_id=row["upstream_id"],
            owner=row["owner"],
            lease_until=row["lease_until"],
            key_id=row["key_id"],
        )

    async def delete(self, response_id: str) -> bool:
        row = await self._run(lambda pool: pool.fetchrow(_DELETE, response_id))
        return row is not None

    async def list_input_items(
        self, response_id: str, *, after: str | None, before: str | None, limit: int, order: Order
    ) -> ItemPage | None:
        desc = order == "desc"

        async def page(pool: asyncpg.Pool[Any]) -> list[bytes] | None:
            async with pool.acquire() as conn:
                if await conn.fetchval("SELECT 1 FROM rg_responses WHERE id = $1", response_id) is None:
                    return None
                cond = "response_id = $1"
                args: list[object] = [response_id]
                for cursor, later in ((after, not desc), (before, desc)):
                    if cursor is None:
                        continue
                    position = await conn.fetchval(
                        "SELECT position FROM rg_input_items WHERE response_id = $1 AND item_id = $2",
                        response_id,
                        cursor,
                    )
                    if position is None:
                        raise KeyError(cursor)
                    args.append(position)
                    cond += f" AND position {'>' if later else '<'} ${len(args)}"
                args.append(limit + 1)
                sql = (
                    f"SELECT item FROM rg_input_items WHERE {cond}"
                    f" ORDER BY position {'DESC' if desc else 'ASC'} LIMIT ${len(args)}"
                )
                return [r["item"] for r in await conn.fetch(sql, *args)]

        blobs = await self._run(page)
        if blobs is None:
            return None
        return ItemPage([items_pb2.Item.FromString(b) for b in blobs[:limit]], has_more=len(blobs) > limit)

    async def append_events(self, response_id: str, events: list[events_pb2.ResponseStreamEvent]) -> None:
        if not events:
            return
        seqs = [e.sequence_number for e in events]
        blobs = [e.SerializeToString() for e in events]
        await self._run(lambda pool: pool.execute(_APPEND, response_id, seqs, blobs))

    async def read_events(self, response_id: str, after: int) -> list[events_pb2.ResponseStreamEvent]:
        rows = await self._run(
            lambda pool: pool.fetch(
                "SELECT event FROM rg_events WHERE response_id = $1 AND seq > $2 ORDER BY seq",
                response_id,
                after,
            )
        )
        return [events_pb2.ResponseStreamEvent.FromString(r["event"]) for r in rows]

    # --- leases ---------------------------------------------------------------------------------

    async def renew(self, owner: str, response_ids: list[str], until: float) -> None:
        if not response_ids:
            return
        await self._run(
            lambda pool: pool.execute(
                "UPDATE rg_responses SET lease_until = $1 WHERE id = ANY($2::text[]) AND owner = $3 AND running",
                until,
                response_ids,
                owner,
            )
        )

    async def claim_expired(self, owner: str, now: float, until: float) -> list[StoredResponse]:
        before = now if math.isfinite(now) else float("inf")
        rows = await self._run(lambda pool: pool.fetch(_CLAIM, owner, until, before))
        return [
            StoredResponse(
                response_pb2.Response.FromString(r["response"]),
                [],
                r["deployment"],
                r["upstream_id"],
                owner,
                until,
            )
            for r in rows
        ]

    async def expire(self, created_before: float) -> int:
        status = await self._run(
            lambda pool: pool.execute("DELETE FROM rg_responses WHERE created_at < $1", created_before)
        )
        return int(status.rsplit(" ", 1)[-1])

    # --- signals --------------------------------------------------------------------------------

    async def request_cancel(self, response_id: str) -> None:
        await self._run(lambda pool: pool.execute("SELECT pg_notify($1, $2)", CANCEL, response_id))
