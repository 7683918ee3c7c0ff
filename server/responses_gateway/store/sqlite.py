"""SQLite response store (the default): one file, WAL mode, serialized protobuf blobs.

Blobs are the contract's own binary encoding, so a stored response keeps everything it was created
with, unknown fields included, and reading it back costs one parse.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite

from responses_gateway.store.base import ItemPage, Order, StoredResponse
from responses_gateway.v1 import events_pb2, items_pb2, response_pb2

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
CREATE INDEX IF NOT EXISTS input_items_by_id ON input_items (response_id, item_id);
CREATE TABLE IF NOT EXISTS events (
    response_id TEXT NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (response_id, seq)
);
"""


def item_id(item: items_pb2.Item) -> str:
    """The `id` of whichever item the union holds ("" when it has none)."""
    kind = item.WhichOneof("kind")
    if kind is None or kind == "unknown":
        if kind == "unknown" and item.unknown.HasField("struct_value"):
            v = item.unknown.struct_value.fields.get("id")
            return v.string_value if v is not None else ""
        return ""
    arm = getattr(item, kind)
    return str(getattr(arm, "id", "") or "")


class SqliteStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self._path)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.executescript(_SCHEMA)
        await db.commit()
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def put(self, record: StoredResponse) -> None:
        r = record.response
        rows = [
            (r.id, i, item_id(item), item.SerializeToString()) for i, item in enumerate(record.input_items)
        ]
        async with self._lock:
            await self.db.execute("DELETE FROM input_items WHERE response_id = ?", (r.id,))
            await self.db.execute(
                "INSERT OR REPLACE INTO responses (id, created_at, deployment, upstream_id, response)"
                " VALUES (?, ?, ?, ?, ?)",
                (r.id, r.created_at, record.deployment, record.upstream_id, r.SerializeToString()),
            )
            await self.db.executemany(
                "INSERT INTO input_items (response_id, position, item_id, item) VALUES (?, ?, ?, ?)", rows
            )
            await self.db.commit()

    async def update_response(self, response: response_pb2.Response) -> None:
        async with self._lock:
            await self.db.execute(
                "UPDATE responses SET response = ? WHERE id = ?", (response.SerializeToString(), response.id)
            )
            await self.db.commit()

    async def get(self, response_id: str) -> StoredResponse | None:
        async with self.db.execute(
            "SELECT deployment, upstream_id, response FROM responses WHERE id = ?", (response_id,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        async with self.db.execute(
            "SELECT item FROM input_items WHERE response_id = ? ORDER BY position", (response_id,)
        ) as cur:
            items = [items_pb2.Item.FromString(blob) for (blob,) in await cur.fetchall()]
        return StoredResponse(
            response=response_pb2.Response.FromString(row[2]),
            input_items=items,
            deployment=row[0],
            upstream_id=row[1],
        )

    async def delete(self, response_id: str) -> bool:
        async with self._lock:
            cur = await self.db.execute("DELETE FROM responses WHERE id = ?", (response_id,))
            await self.db.commit()
            return cur.rowcount > 0

    async def list_input_items(
        self, response_id: str, *, after: str | None, limit: int, order: Order
    ) -> ItemPage | None:
        async with self.db.execute("SELECT 1 FROM responses WHERE id = ?", (response_id,)) as cur:
            if await cur.fetchone() is None:
                return None
        desc = order == "desc"
        cond, args = "response_id = ?", [response_id]
        if after:
            async with self.db.execute(
                "SELECT position FROM input_items WHERE response_id = ? AND item_id = ?", (response_id, after)
            ) as cur:
                row = await cur.fetchone()
            if row is not None:
                cond += " AND position < ?" if desc else " AND position > ?"
                args.append(row[0])
        sql = (
            f"SELECT item FROM input_items WHERE {cond} ORDER BY position {'DESC' if desc else 'ASC'} LIMIT ?"
        )
        async with self.db.execute(sql, (*args, limit + 1)) as cur:
            blobs = [blob for (blob,) in await cur.fetchall()]
        return ItemPage(
            items=[items_pb2.Item.FromString(b) for b in blobs[:limit]], has_more=len(blobs) > limit
        )

    async def append_events(self, response_id: str, events: list[events_pb2.ResponseStreamEvent]) -> None:
        if not events:
            return
        rows = [(response_id, e.sequence_number, e.SerializeToString()) for e in events]
        async with self._lock:
            await self.db.executemany(
                "INSERT OR REPLACE INTO events (response_id, seq, event) VALUES (?, ?, ?)", rows
            )
            await self.db.commit()

    async def read_events(self, response_id: str, after: int) -> list[events_pb2.ResponseStreamEvent]:
        async with self.db.execute(
            "SELECT event FROM events WHERE response_id = ? AND seq > ? ORDER BY seq", (response_id, after)
        ) as cur:
            return [events_pb2.ResponseStreamEvent.FromString(b) for (b,) in await cur.fetchall()]
