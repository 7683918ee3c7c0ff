"""A SQLite file written by the gateway before leases (schema 1) opens with its responses intact and
is brought to the current schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from responses_gateway.store.sqlite import _MIGRATIONS, SqliteStore
from responses_gateway.v1 import response_pb2

_OLD = """
CREATE TABLE responses (id TEXT PRIMARY KEY, created_at REAL NOT NULL, deployment TEXT NOT NULL,
    upstream_id TEXT NOT NULL, response BLOB NOT NULL);
CREATE TABLE input_items (response_id TEXT NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, item_id TEXT NOT NULL, item BLOB NOT NULL, PRIMARY KEY (response_id, position));
CREATE TABLE events (response_id TEXT NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, event BLOB NOT NULL, PRIMARY KEY (response_id, seq));
"""


async def test_schema_one_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = response_pb2.Response(id="resp_old", object="response", model="m")
    old.status = response_pb2.RESPONSE_STATUS_COMPLETED
    with sqlite3.connect(path) as db:
        db.executescript(_OLD)
        db.execute("INSERT INTO responses VALUES (?, 1, 'd', 'u', ?)", ("resp_old", old.SerializeToString()))
    store = SqliteStore(str(path))
    await store.open()
    try:
        got = await store.get("resp_old")
        assert got is not None and got.response == old and got.owner == "" and got.key_id == ""
        assert await store.claim_expired("me", float("inf"), 1.0) == []  # it is not running
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == max(_MIGRATIONS)
        columns = {row[1] for row in db.execute("PRAGMA table_info(responses)")}
    assert {"running", "owner", "lease_until", "key_id"} <= columns
