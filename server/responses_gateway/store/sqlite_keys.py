"""The key store on SQLite: the same file and thread as the response store (store/sqlite.py), one
transaction per operation. Tables `rg_keys`, `rg_counters`, `rg_spend` (migration 3 there)."""

from __future__ import annotations

import sqlite3

from responses_gateway.store.keys import Hit, KeyRecord, SpendRow
from responses_gateway.store.sqlite import SqliteStore

_UPSERT_COUNTER = """
INSERT INTO rg_counters (key_id, kind, win, value, expires_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (key_id, kind, win) DO UPDATE SET value = value + excluded.value
RETURNING value
"""
_UPSERT_SPEND = """
INSERT INTO rg_spend (day, key_id, team_id, end_user, model, spend, requests, input_tokens, output_tokens)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (day, key_id, team_id, end_user, model) DO UPDATE SET spend = spend + excluded.spend,
    requests = requests + excluded.requests, input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens
"""


def _row(key: KeyRecord) -> tuple[str, str | None, str | None, str | None, float, bytes]:
    return (key.key_id, key.key_alias, key.user_id, key.team_id, key.created_at, key.to_json())


class SqliteKeys:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def create_key(self, key: KeyRecord) -> bool:
        def create(db: sqlite3.Connection) -> bool:
            with db:
                db.execute("BEGIN")
                try:
                    db.execute(
                        "INSERT INTO rg_keys (key_id, alias, user_id, team_id, created_at, body)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        _row(key),
                    )
                except sqlite3.IntegrityError:  # the id or the alias is taken
                    return False
            return True

        return await self._store._run(create)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        row = await self._store._run(
            lambda db: db.execute("SELECT body FROM rg_keys WHERE key_id = ?", (key_id,)).fetchone()
        )
        return None if row is None else KeyRecord.from_json(row[0])

    async def find_alias(self, alias: str) -> KeyRecord | None:
        row = await self._store._run(
            lambda db: db.execute("SELECT body FROM rg_keys WHERE alias = ?", (alias,)).fetchone()
        )
        return None if row is None else KeyRecord.from_json(row[0])

    async def replace_key(self, key: KeyRecord) -> bool:
        key_id, alias, user_id, team_id, _, body = _row(key)

        def replace(db: sqlite3.Connection) -> bool:
            with db:
                db.execute("BEGIN")
                try:
                    cur = db.execute(
                        "UPDATE rg_keys SET alias = ?, user_id = ?, team_id = ?, body = ? WHERE key_id = ?",
                        (alias, user_id, team_id, body, key_id),
                    )
                except sqlite3.IntegrityError:
                    return False
                return cur.rowcount > 0

        return await self._store._run(replace)

    async def delete_keys(self, key_ids: list[str]) -> list[str]:
        def delete(db: sqlite3.Connection) -> list[str]:
            gone = []
            with db:
                db.execute("BEGIN")
                for key_id in key_ids:
                    if db.execute("DELETE FROM rg_keys WHERE key_id = ?", (key_id,)).rowcount:
                        gone.append(key_id)
                        db.execute("DELETE FROM rg_counters WHERE key_id = ?", (key_id,))
            return gone

        return await self._store._run(delete)

    async def list_keys(
        self, *, user_id: str | None, team_id: str | None, offset: int, limit: int
    ) -> tuple[list[KeyRecord], int]:
        cond, args = "1 = 1", list[str]()
        if user_id is not None:
            cond, args = cond + " AND user_id = ?", [*args, user_id]
        if team_id is not None:
            cond, args = cond + " AND team_id = ?", [*args, team_id]

        def page(db: sqlite3.Connection) -> tuple[list[bytes], int]:
            total = db.execute(f"SELECT count(*) FROM rg_keys WHERE {cond}", args).fetchone()[0]
            rows = db.execute(
                f"SELECT body FROM rg_keys WHERE {cond} ORDER BY created_at DESC, key_id LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
            return [r[0] for r in rows], total

        blobs, total = await self._store._run(page)
        return [KeyRecord.from_json(b) for b in blobs], total

    async def count(self, hits: list[Hit]) -> list[float]:
        if not hits:
            return []

        def count(db: sqlite3.Connection) -> list[float]:
            with db:
                db.execute("BEGIN")
                return [
                    db.execute(
                        _UPSERT_COUNTER, (h.key_id, h.kind, h.window, h.amount, h.expires_at)
                    ).fetchone()[0]
                    for h in hits
                ]

        return await self._store._run(count)

    async def add_spend(self, rows: list[SpendRow]) -> None:
        if not rows:
            return
        args = [(*r.group, r.spend, r.requests, r.input_tokens, r.output_tokens) for r in rows]

        def add(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN")
                db.executemany(_UPSERT_SPEND, args)

        await self._store._run(add)

    async def spend_rows(self, start_day: str, end_day: str, key_id: str | None) -> list[SpendRow]:
        sql = (
            "SELECT day, key_id, team_id, end_user, model, spend, requests, input_tokens, output_tokens"
            " FROM rg_spend WHERE day >= ? AND day <= ?"
        )
        args: tuple[str, ...] = (start_day, end_day)
        if key_id is not None:
            sql, args = sql + " AND key_id = ?", (*args, key_id)
        rows = await self._store._run(lambda db: db.execute(sql, args).fetchall())
        return [SpendRow(*r) for r in rows]

    async def response_owner(self, response_id: str) -> str | None:
        row = await self._store._run(
            lambda db: db.execute("SELECT key_id FROM responses WHERE id = ?", (response_id,)).fetchone()
        )
        return None if row is None else str(row[0])

    async def purge_counters(self, now: float) -> None:
        def purge(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN")
                db.execute("DELETE FROM rg_counters WHERE expires_at > 0 AND expires_at < ?", (now,))

        await self._store._run(purge, sweep=True)
