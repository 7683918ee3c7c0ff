"""A SQLite file written by the gateway before leases (schema 1) opens with its responses intact and
is brought to the current schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from responses_gateway.store.base import StoredResponse
from responses_gateway.store.sqlite import _MIGRATIONS, SqliteStore
from responses_gateway.v1 import items_pb2, response_pb2

_OLD = """
CREATE TABLE responses (id TEXT PRIMARY KEY, created_at REAL NOT NULL, deployment TEXT NOT NULL,
    upstream_id TEXT NOT NULL, response BLOB NOT NULL);
CREATE TABLE input_items (response_id TEXT NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, item_id TEXT NOT NULL, item BLOB NOT NULL, PRIMARY KEY (response_id, position));
CREATE TABLE events (response_id TEXT NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, event BLOB NOT NULL, PRIMARY KEY (response_id, seq));
"""


def _item(item_id: str, text: str) -> items_pb2.Item:
    item = items_pb2.Item()
    item.message.id = item_id
    item.message.role = items_pb2.MESSAGE_ROLE_USER
    item.message.content.parts.parts.add().input_text.text = text
    return item


_ITEMS = [_item("msg_a", "one"), _item("msg_b", "two"), _item("msg_c", "three")]


async def test_schema_one_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = response_pb2.Response(id="resp_old", object="response", model="m")
    old.status = response_pb2.RESPONSE_STATUS_COMPLETED
    with sqlite3.connect(path) as db:
        db.executescript(_OLD)
        db.execute("INSERT INTO responses VALUES (?, 1, 'd', 'u', ?)", ("resp_old", old.SerializeToString()))
        for position, item in enumerate(_ITEMS):
            db.execute(
                "INSERT INTO input_items VALUES ('resp_old', ?, ?, ?)",
                (position, item.message.id, item.SerializeToString()),
            )
    store = SqliteStore(str(path))
    await store.open()
    try:
        got = await store.get("resp_old")
        assert got is not None and got.response == old and got.owner == "" and got.key_id == ""
        assert got.input_items == _ITEMS  # kept in the old table, read from there
        page = await store.list_input_items("resp_old", after="msg_a", before=None, limit=5, order="asc")
        assert page is not None and page.items == _ITEMS[1:] and not page.has_more
        # Written again (a new version of the row): its items move into the row, the old ones go.
        await store.put(StoredResponse(old, _ITEMS[:1], "d", "u"))
        again = await store.get("resp_old")
        assert again is not None and again.input_items == _ITEMS[:1]
        assert await store.claim_expired("me", float("inf"), 1.0) == []  # it is not running
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == max(_MIGRATIONS)
        assert db.execute("SELECT count(*) FROM input_items").fetchone()[0] == 0
        columns = {row[1] for row in db.execute("PRAGMA table_info(responses)")}
    assert {"running", "owner", "lease_until", "key_id"} <= columns


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[1] for row in db.execute("PRAGMA index_list(responses)")}


async def test_the_age_index_is_kept_only_with_a_ttl(tmp_path: Path) -> None:
    """The ttl sweep's index (created_at) costs every stored response a page written; a store without
    a ttl has no sweep, so it does not keep one, and sweeps correctly all the same if asked."""
    path = tmp_path / "responses.db"
    old = response_pb2.Response(id="resp_old", object="response", model="m", created_at=1)
    new = response_pb2.Response(id="resp_new", object="response", model="m", created_at=2_000_000_000)
    store = SqliteStore(str(path), ttl=60.0)
    await store.open()
    try:
        await store.put(StoredResponse(old, [], "d", "u"))
        await store.put(StoredResponse(new, [], "d", "u"))
    finally:
        await store.close()
    assert "responses_by_age" in _indexes(path)
    with sqlite3.connect(path) as db:  # the sweep's query reads it
        plan = " ".join(
            r[3] for r in db.execute("EXPLAIN QUERY PLAN DELETE FROM responses WHERE created_at < 5")
        )
    assert "responses_by_age" in plan, plan

    store = SqliteStore(str(path))  # the same file, the ttl unset: the index goes
    await store.open()
    try:
        assert "responses_by_age" not in _indexes(path)
        assert await store.expire(1_000) == 1  # a scan, with the same result
        assert await store.get("resp_old") is None and await store.get("resp_new") is not None
    finally:
        await store.close()

    store = SqliteStore(str(path), ttl=60.0)  # and a ttl again brings it back
    await store.open()
    await store.close()
    assert "responses_by_age" in _indexes(path)
