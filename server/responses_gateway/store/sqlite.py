"""SQLite response store (the default): one file, WAL mode, serialized protobuf blobs.

Blobs are the contract's own binary encoding, so a stored response keeps everything it was created
with, unknown fields included, and reading it back costs one parse. Every operation is one plain
function, all of its statements in one transaction, run on the event loop's thread: a short SQLite
transaction (~30 µs) costs less than the hop to a thread and back (~25 µs of wake-ups, plus the
loop iterations around them). It runs there without waiting for locks (busy timeout 0); when another
worker holds the write lock, the operation goes to the store's own thread, which may wait, and the
operations after it queue there behind it until the queue is empty again, so they stay in order.
Sweeps over many rows (retention, reaping) always run on that thread. The puts of one turn of the
loop share one transaction (group commit, `_write_puts`), written at the end of the turn or before
any later operation, whichever comes first.

SQLite's own failures (disk full, I/O errors, a locked, read-only or corrupted file) leave here as
`StoreUnavailable` with SQLite's short reason, and are passed to `on_unavailable` (the health checks);
errors that mean a bug in this module (constraint violations, misuse) stay what they are.

Under `serve --workers N` the workers share the file (`join_workers`): the store then says it is
`shared` (leases renewed and reaped as by replicas, key counters kept in the file), its signals reach
the other workers through a `WorkerBus`, and concurrent writers wait for each other (busy timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from responses_gateway.store.base import (
    ItemPage,
    Order,
    StoredResponse,
    StoreUnavailable,
    is_running,
    page_of,
)
from responses_gateway.store.signals import LocalSignals, Signalling, WorkerBus
from responses_gateway.v1 import events_pb2, items_pb2, response_pb2

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    deployment TEXT NOT NULL,
    upstream_id TEXT NOT NULL,
    response BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS input_items (
    response_id TEXT NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    item BLOB NOT NULL,
    PRIMARY KEY (response_id, position)
);
CREATE TABLE IF NOT EXISTS events (
    response_id TEXT NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (response_id, seq)
);
CREATE TABLE IF NOT EXISTS store_probe (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    pad BLOB NOT NULL
);
"""

# Schema versions after the first (PRAGMA user_version): each brings a file from the one before.
_MIGRATIONS = {
    2: """
    ALTER TABLE responses ADD COLUMN running INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE responses ADD COLUMN owner TEXT NOT NULL DEFAULT '';
    ALTER TABLE responses ADD COLUMN lease_until REAL NOT NULL DEFAULT 0;
    CREATE INDEX responses_running ON responses (lease_until) WHERE running = 1;
    """,
    # Virtual keys (store/sqlite_keys.py): who made a response, the keys, their counters and spend.
    3: """
    ALTER TABLE responses ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
    CREATE TABLE rg_keys (
        key_id TEXT PRIMARY KEY,
        alias TEXT UNIQUE,
        user_id TEXT,
        team_id TEXT,
        created_at REAL NOT NULL,
        body BLOB NOT NULL
    );
    CREATE TABLE rg_counters (
        key_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        win INTEGER NOT NULL,
        value REAL NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (key_id, kind, win)
    );
    CREATE TABLE rg_spend (
        day TEXT NOT NULL,
        key_id TEXT NOT NULL,
        team_id TEXT NOT NULL,
        end_user TEXT NOT NULL,
        model TEXT NOT NULL,
        spend REAL NOT NULL,
        requests INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        PRIMARY KEY (day, key_id, team_id, end_user, model)
    );
    """,
    # A cursor's item is found by scanning its response's items (the primary key's range): one index
    # fewer to write on every stored response, which is the store's cost on the request path.
    4: """
    DROP INDEX IF EXISTS input_items_by_id;
    """,
    # A response's input items in its own row (an ItemList): one B-tree insert per stored response
    # instead of one per item plus their index. NULL for rows written before, whose items stay in
    # input_items (read from there, and deleted with their response by the foreign key).
    5: """
    ALTER TABLE responses ADD COLUMN items BLOB;
    """,
}


# The index the ttl sweep (`expire`) reads, kept only when the store has a ttl (`SqliteStore(ttl=)`):
# every stored response writes each index's page, and without a ttl nothing reads this one. A sweep
# without it is correct, only a scan of the table.
_AGE_INDEX = "CREATE INDEX IF NOT EXISTS responses_by_age ON responses (created_at)"
_NO_AGE_INDEX = "DROP INDEX IF EXISTS responses_by_age"


def _migrate(db: sqlite3.Connection) -> None:
    db.executescript(_SCHEMA)
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for target in sorted(v for v in _MIGRATIONS if v > max(version, 1)):
        db.executescript(f"BEGIN; {_MIGRATIONS[target]} PRAGMA user_version = {target}; COMMIT;")


# How long an operation waits for another worker's transaction before it fails (StoreUnavailable).
# Transactions here are a statement or a few, so this is only reached by a stuck writer.
_BUSY_TIMEOUT_SECONDS = 10.0
# Between tries while another worker holds the lock: from 0.1 ms, doubling, at most 5 ms. SQLite's own
# busy handler sleeps 1 ms at first and then longer, far more than the transaction it waits for.
_RETRY_FIRST, _RETRY_MAX = 0.0001, 0.005
_LOCKED_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)

# WAL pages between checkpoints (SQLite's default: 1000, 4 MB). A checkpoint copies each page changed
# since the last one into the database once, however often it changed, so a longer interval copies the
# hot pages (the tables' last leaves, the indexes' inner pages) fewer times per response stored.
_WAL_CHECKPOINT_PAGES = 10_000

# The health probe's write: a few pages, so a store with no room left fails it (SQLite reuses the
# pages the previous probe freed, so it does not grow the file).
_PROBE_BYTES = 16 * 1024


def _is_store_fault(e: sqlite3.Error) -> bool:
    """Failures of the store itself: OperationalError (full, I/O, locked, read-only, cannot open) and
    plain DatabaseError (SQLITE_CORRUPT, SQLITE_NOTADB). IntegrityError and the like are our bugs."""
    return isinstance(e, sqlite3.OperationalError) or type(e) is sqlite3.DatabaseError


# Group commit (`_gather_puts`): how many turns of the loop a batch of puts may wait for more, and
# how many rows it may reach before it is written whatever comes.
_BATCH_TURNS, _BATCH_ROWS = 4, 32


class _Busy(Exception):
    """Another connection holds the lock an operation run without waiting needed (rolled back)."""


def _guarded(fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    """Run `fn` without waiting for locks; on a failure leave the connection out of any transaction, so
    the next operation starts clean, and report it as StoreUnavailable (a lock held elsewhere: _Busy)."""
    try:
        return fn(db)
    except sqlite3.Error as e:
        if not _is_store_fault(e):
            raise
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the original failure is the one to report
                db.rollback()
        if getattr(e, "sqlite_errorcode", 0) & 0xFF in _LOCKED_CODES:
            raise _Busy(str(e)) from e
        raise StoreUnavailable(str(e) or type(e).__name__) from e


def _patient(fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    """`_guarded`, tried again while another connection holds the lock (on the store's thread)."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_SECONDS
    delay = _RETRY_FIRST
    while True:
        try:
            return _guarded(fn, db)
        except _Busy as e:
            if time.monotonic() >= deadline:
                raise StoreUnavailable(str(e) or "database is locked") from e
        time.sleep(delay)
        delay = min(delay * 2, _RETRY_MAX)


_INSERT = (
    "INSERT OR REPLACE INTO responses (id, created_at, deployment, upstream_id, response,"
    " running, owner, lease_until, key_id, items) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _insert(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Write responses' rows in one transaction. REPLACE deletes a row of the same id first, and with
    it (foreign key) any items an older version of the row kept in input_items."""
    if len(rows) == 1:
        db.execute(_INSERT, rows[0])
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(_INSERT, rows)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.rollback()
        raise


def _settle(batch: list[tuple[Any, asyncio.Future[None]]], error: BaseException | None) -> None:
    for _, waiter in batch:
        if waiter.done():  # its caller stopped waiting; the row is written (or not) all the same
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)


class SqliteStore(Signalling):
    shared = False  # one process (or the workers of one, after join_workers): never several replicas

    def __init__(
        self,
        path: str,
        *,
        ttl: float | None = None,
        on_unavailable: Callable[[StoreUnavailable], None] | None = None,
    ) -> None:
        """`ttl`: the store's (gateway_settings.store.ttl), swept by `Leases`; with one the file keeps
        the index that sweep reads (`_AGE_INDEX`), without one it drops it."""
        self._path = path
        self._ttl = ttl
        self._db: sqlite3.Connection | None = None
        self.on_unavailable = on_unavailable
        # Sweeps, and operations that must wait for another worker's lock, run here (module docstring).
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._queued = 0  # operations submitted to the thread and not finished
        self._signals = LocalSignals()
        self._bus: WorkerBus | None = None  # the other workers of `serve --workers N`
        # Puts of the current turn of the loop, written in one transaction at its end (_write_puts).
        self._puts: list[tuple[tuple[Any, ...], asyncio.Future[None]]] | None = None

    def join_workers(self, directory: str) -> None:
        """Share the file with the other worker processes whose bus sockets are in `directory`."""
        self.shared = True
        self._bus = WorkerBus(directory, self._signals)
        self._bus.open()

    def _changed(self, response_id: str) -> None:
        self._signals.notify(response_id)
        if self._bus is not None:
            self._bus.changed(response_id)

    @property
    def path(self) -> str:
        return self._path

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, sweep: bool = False) -> T:
        """Run `fn` on the loop's thread (`sweep`: on the store's), as the module docstring says."""
        if self._puts is not None:  # earlier puts first (_write_puts)
            self._write_puts()
        db = self._db
        if db is None:
            raise RuntimeError("store is not open")
        try:
            if not self._queued and not sweep:
                try:
                    return _guarded(fn, db)
                except _Busy:
                    pass
            result: T = await self._on_thread(_patient, fn, db)
            return result
        except StoreUnavailable as e:
            self._report(e)
            raise

    def _report(self, error: BaseException) -> None:
        if isinstance(error, StoreUnavailable) and self.on_unavailable is not None:
            self.on_unavailable(error)

    def _submit(self, *call: Any) -> asyncio.Future[Any]:
        """Queue `call` on the store's thread. The connection is the thread's until every operation
        queued there has finished, even when its caller stops waiting, so none runs beside it."""
        future = asyncio.get_running_loop().run_in_executor(self._thread, *call)
        self._queued += 1
        future.add_done_callback(self._dequeued)
        return future

    async def _on_thread(self, *call: Any) -> Any:
        return await asyncio.shield(self._submit(*call))  # shielded: see _submit

    def _dequeued(self, _: object) -> None:
        self._queued -= 1

    async def run_raw(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on the store's connection and thread, errors untranslated and unreported (for
        maintenance and tests, e.g. `PRAGMA max_page_count`)."""
        if self._puts is not None:
            self._write_puts()
        db = self._db
        if db is None:
            raise RuntimeError("store is not open")
        result: T = await self._on_thread(fn, db)
        return result

    async def open(self) -> None:
        """Open (or create) the file and check it: StoreUnavailable if it cannot be created, is not a
        database or fails SQLite's quick_check (O(size) once at start, so corruption stops start-up
        rather than turning into errors on some requests later)."""
        if self._path != ":memory:":
            try:
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            except FileExistsError as e:  # a file where a directory should be
                raise StoreUnavailable("its directory is not a directory") from e
            except OSError as e:
                raise StoreUnavailable(f"cannot create its directory ({e.strerror or e})") from e

        def connect() -> sqlite3.Connection:
            db = sqlite3.connect(
                self._path, check_same_thread=False, isolation_level=None, timeout=_BUSY_TIMEOUT_SECONDS
            )
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(f"PRAGMA wal_autocheckpoint={_WAL_CHECKPOINT_PAGES}")
                db.execute("PRAGMA foreign_keys=ON")
                problems = [row[0] for row in db.execute("PRAGMA quick_check(1)")]
                if problems != ["ok"]:
                    raise sqlite3.DatabaseError(f"database disk image is malformed ({problems[0]})")
                _migrate(db)
                db.execute(_AGE_INDEX if self._ttl is not None else _NO_AGE_INDEX)
                db.execute("PRAGMA busy_timeout = 0")  # operations wait in _patient, not in SQLite
            except BaseException:
                db.close()
                raise
            return db

        def guarded_connect() -> sqlite3.Connection:
            try:
                return connect()
            except sqlite3.Error as e:
                if not _is_store_fault(e):
                    raise
                raise StoreUnavailable(str(e) or type(e).__name__) from e

        self._db = await asyncio.get_running_loop().run_in_executor(self._thread, guarded_connect)

    async def close(self) -> None:
        if self._puts is not None:
            self._write_puts()
        bus, self._bus = self._bus, None
        if bus is not None:
            bus.close()
        db, self._db = self._db, None
        if db is not None:
            await self._on_thread(db.close)
        self._thread.shutdown(wait=True)

    async def probe(self) -> None:
        def probe(db: sqlite3.Connection) -> None:
            # Page 1 and the schema: a file that stopped being a database fails here.
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.execute(
                    "INSERT OR REPLACE INTO store_probe (id, at, pad) VALUES (1, ?, zeroblob(?))",
                    (time.time(), _PROBE_BYTES),
                )
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.execute("DELETE FROM store_probe")

        await self._run(probe)

    async def put(self, record: StoredResponse) -> None:
        r = record.response
        running = is_running(r)
        row = (
            r.id,
            r.created_at,
            record.deployment,
            record.upstream_id,
            r.SerializeToString(),
            int(running),
            record.owner if running else "",
            record.lease_until if running else 0.0,
            record.key_id,
            items_pb2.ItemList(items=record.input_items).SerializeToString(),
        )
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if self._puts is None:  # the first of this turn: the turn's other puts join its transaction
            self._puts = []
            loop.call_soon(self._gather_puts, 0, 1)
        self._puts.append((row, waiter))
        await waiter
        if r.background:  # only background responses have watchers (base.py)
            self._changed(r.id)

    def _gather_puts(self, turns: int, seen: int) -> None:
        """At the start of each turn after the batch's first put: while the batch grew in the turn
        before (puts keep coming: the loop is busy), wait one turn more, up to _BATCH_TURNS turns or
        _BATCH_ROWS rows; then write it. A put made while the loop is otherwise idle waits one turn."""
        batch = self._puts
        if batch is None:
            return  # written already, by an operation that came after it (_run)
        if len(batch) > seen and turns < _BATCH_TURNS and len(batch) < _BATCH_ROWS:
            asyncio.get_running_loop().call_soon(self._gather_puts, turns + 1, len(batch))
            return
        self._write_puts()

    def _write_puts(self) -> None:
        """Write the puts of one turn of the loop in one transaction (group commit): a commit's WAL
        writes and file locks are most of a small transaction's cost, so under load each response
        stored pays a share of one. Each caller returns once its row is committed. Run in the next
        turn, or first thing by any later operation (`_run`), so operations keep their order; like
        any operation, inline, or queued on the store's thread when another worker holds the lock.
        (A first put that waits a turn itself and then writes inline saves ~10 µs at concurrency 1
        but batches less under load: measured ~35 µs per request more when saturated.)"""
        batch, self._puts = self._puts, None
        if not batch:
            return
        rows = [row for row, _ in batch]
        db = self._db
        if db is None:
            _settle(batch, RuntimeError("store is not open"))
            return
        if not self._queued:
            try:
                _guarded(lambda db: _insert(db, rows), db)
            except _Busy:
                pass
            except Exception as e:
                self._report(e)
                _settle(batch, e)
                return
            else:
                _settle(batch, None)
                return
        # Queued now, not when a task would first run: the operations after this one queue behind it.
        future = self._submit(_patient, lambda db: _insert(db, rows), db)

        def written(done: asyncio.Future[None]) -> None:
            error = StoreUnavailable("the store closed") if done.cancelled() else done.exception()
            if error is not None:
                self._report(error)
            _settle(batch, error)

        future.add_done_callback(written)

    async def update_response(self, response: response_pb2.Response) -> None:
        blob, rid = response.SerializeToString(), response.id
        if is_running(response):
            sql, args = "UPDATE responses SET response = ? WHERE id = ?", (blob, rid)
        else:  # ended: it holds no lease any more
            sql = "UPDATE responses SET response = ?, running = 0, owner = '', lease_until = 0 WHERE id = ?"
            args = (blob, rid)
        await self._run(lambda db: db.execute(sql, args))
        if response.background:
            self._changed(rid)

    async def get(self, response_id: str) -> StoredResponse | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT deployment, upstream_id, response, owner, lease_until, key_id, items"
                " FROM responses WHERE id = ?",
                (response_id,),
            ).fetchone()
        )
        if row is None:
            return None
        blob = row[6]
        return StoredResponse(
            response=response_pb2.Response.FromString(row[2]),
            input_items=await self._items(response_id, blob),
            deployment=row[0],
            upstream_id=row[1],
            owner=row[3],
            lease_until=row[4],
            key_id=row[5],
        )

    async def _items(self, response_id: str, blob: bytes | None) -> list[items_pb2.Item]:
        """A row's input items: its ItemList, or the input_items rows of a row written before."""
        if blob is not None:
            return list(items_pb2.ItemList.FromString(blob).items)
        rows = await self._run(
            lambda db: db.execute(
                "SELECT item FROM input_items WHERE response_id = ? ORDER BY position", (response_id,)
            ).fetchall()
        )
        return [items_pb2.Item.FromString(b) for (b,) in rows]

    async def delete(self, response_id: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            with db:
                db.execute("BEGIN")
                return db.execute("DELETE FROM responses WHERE id = ?", (response_id,)).rowcount > 0

        deleted = await self._run(delete)
        self._changed(response_id)
        return deleted

    async def list_input_items(
        self, response_id: str, *, after: str | None, before: str | None, limit: int, order: Order
    ) -> ItemPage | None:
        row = await self._run(
            lambda db: db.execute("SELECT items FROM responses WHERE id = ?", (response_id,)).fetchone()
        )
        if row is None:
            return None
        return page_of(await self._items(response_id, row[0]), after, before, limit, order)

    async def append_events(self, response_id: str, events: list[events_pb2.ResponseStreamEvent]) -> None:
        if not events:
            return
        rows = [(response_id, e.sequence_number, e.SerializeToString()) for e in events]

        def append(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN")
                db.executemany(
                    "INSERT OR REPLACE INTO events (response_id, seq, event) VALUES (?, ?, ?)", rows
                )

        await self._run(append)
        self._changed(response_id)

    async def read_events(self, response_id: str, after: int) -> list[events_pb2.ResponseStreamEvent]:
        blobs = await self._run(
            lambda db: db.execute(
                "SELECT event FROM events WHERE response_id = ? AND seq > ? ORDER BY seq",
                (response_id, after),
            ).fetchall()
        )
        return [events_pb2.ResponseStreamEvent.FromString(b) for (b,) in blobs]

    # --- leases ---------------------------------------------------------------------------------

    async def renew(self, owner: str, response_ids: list[str], until: float) -> None:
        if not response_ids:
            return
        rows = [(until, rid, owner) for rid in response_ids]

        def renew(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN")
                db.executemany(
                    "UPDATE responses SET lease_until = ? WHERE id = ? AND owner = ? AND running = 1", rows
                )

        await self._run(renew)

    async def claim_expired(self, owner: str, now: float, until: float) -> list[StoredResponse]:
        def claim(db: sqlite3.Connection) -> list[tuple[str, str, bytes]]:
            with db:
                db.execute("BEGIN IMMEDIATE")
                rows = db.execute(
                    "SELECT deployment, upstream_id, response FROM responses"
                    " WHERE running = 1 AND lease_until < ?",
                    (now,),
                ).fetchall()
                db.execute(
                    "UPDATE responses SET owner = ?, lease_until = ? WHERE running = 1 AND lease_until < ?",
                    (owner, until, now),
                )
            return rows

        rows = await self._run(claim, sweep=True)
        return [
            StoredResponse(response_pb2.Response.FromString(blob), [], dep, up, owner, until)
            for dep, up, blob in rows
        ]

    async def expire(self, created_before: float) -> int:
        def expire(db: sqlite3.Connection) -> int:
            with db:
                db.execute("BEGIN")
                return db.execute("DELETE FROM responses WHERE created_at < ?", (created_before,)).rowcount

        return await self._run(expire, sweep=True)

    # --- signals: in this process, and to the other workers when there are any -------------------

    async def request_cancel(self, response_id: str) -> None:
        self._signals.cancel(response_id)
        if self._bus is not None:
            self._bus.cancel(response_id)
