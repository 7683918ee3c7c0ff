"""The key store on PostgreSQL: the response store's pool (store/postgres.py), one statement per
operation. Counters are an upsert on (key_id, kind, window) returning the new values, so replicas
sharing the database count every request once, atomically, in one round trip."""

from __future__ import annotations

from typing import Any

import asyncpg

from responses_gateway.store.keys import Hit, KeyRecord, SpendRow
from responses_gateway.store.postgres import PostgresStore

_COUNT = """
INSERT INTO rg_counters (key_id, kind, win, value, expires_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::float8[], $5::float8[])
ON CONFLICT (key_id, kind, win) DO UPDATE SET value = rg_counters.value + excluded.value
RETURNING key_id, kind, win, value
"""
_SPEND = """
INSERT INTO rg_spend (day, key_id, team_id, end_user, model, spend, requests, input_tokens, output_tokens)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[],
    $7::bigint[], $8::bigint[], $9::bigint[])
ON CONFLICT (day, key_id, team_id, end_user, model) DO UPDATE SET spend = rg_spend.spend + excluded.spend,
    requests = rg_spend.requests + excluded.requests,
    input_tokens = rg_spend.input_tokens + excluded.input_tokens,
    output_tokens = rg_spend.output_tokens + excluded.output_tokens
"""
_DELETE = """
WITH d AS (DELETE FROM rg_keys WHERE key_id = ANY($1::text[]) RETURNING key_id),
c AS (DELETE FROM rg_counters WHERE key_id IN (SELECT key_id FROM d))
SELECT key_id FROM d
"""

Counter = tuple[str, str, int]


def _merged(hits: list[Hit]) -> dict[Counter, tuple[float, float]]:
    """One row per counter: an upsert may not touch a row twice in one statement."""
    out: dict[Counter, tuple[float, float]] = {}
    for h in hits:
        amount, _ = out.get((h.key_id, h.kind, h.window), (0.0, h.expires_at))
        out[(h.key_id, h.kind, h.window)] = (amount + h.amount, h.expires_at)
    return out


class PostgresKeys:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def create_key(self, key: KeyRecord) -> bool:
        async def create(pool: asyncpg.Pool[Any]) -> bool:
            try:
                await pool.execute(
                    "INSERT INTO rg_keys (key_id, alias, user_id, team_id, created_at, body)"
                    " VALUES ($1, $2, $3, $4, $5, $6)",
                    key.key_id,
                    key.key_alias,
                    key.user_id,
                    key.team_id,
                    key.created_at,
                    key.to_json(),
                )
            except asyncpg.UniqueViolationError:
                return False
            return True

        return await self._store._run(create)

    async def _one(self, sql: str, value: str) -> KeyRecord | None:
        blob = await self._store._run(lambda pool: pool.fetchval(sql, value))
        return None if blob is None else KeyRecord.from_json(blob)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        return await self._one("SELECT body FROM rg_keys WHERE key_id = $1", key_id)

    async def find_alias(self, alias: str) -> KeyRecord | None:
        return await self._one("SELECT body FROM rg_keys WHERE alias = $1", alias)

    async def replace_key(self, key: KeyRecord) -> bool:
        async def replace(pool: asyncpg.Pool[Any]) -> bool:
            try:
                status = await pool.execute(
                    "UPDATE rg_keys SET alias = $2, user_id = $3, team_id = $4, body = $5 WHERE key_id = $1",
                    key.key_id,
                    key.key_alias,
                    key.user_id,
                    key.team_id,
                    key.to_json(),
                )
            except asyncpg.UniqueViolationError:
                return False
            return bool(status != "UPDATE 0")

        return await self._store._run(replace)

    async def delete_keys(self, key_ids: list[str]) -> list[str]:
        rows = await self._store._run(lambda pool: pool.fetch(_DELETE, key_ids))
        gone = {r["key_id"] for r in rows}
        return [k for k in key_ids if k in gone]

    async def list_keys(
        self, *, user_id: str | None, team_id: str | None, offset: int, limit: int
    ) -> tuple[list[KeyRecord], int]:
        where = "($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR team_id = $2)"

        async def page(pool: asyncpg.Pool[Any]) -> tuple[list[bytes], int]:
            async with pool.acquire() as conn:
                total = await conn.fetchval(f"SELECT count(*) FROM rg_keys WHERE {where}", user_id, team_id)
                rows = await conn.fetch(
                    f"SELECT body FROM rg_keys WHERE {where}"
                    " ORDER BY created_at DESC, key_id LIMIT $3 OFFSET $4",
                    user_id,
                    team_id,
                    limit,
                    offset,
                )
            return [r["body"] for r in rows], int(total)

        blobs, total = await self._store._run(page)
        return [KeyRecord.from_json(b) for b in blobs], total

    async def count(self, hits: list[Hit]) -> list[float]:
        if not hits:
            return []
        merged = _merged(hits)
        keys = list(merged)
        args = (
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [merged[k][0] for k in keys],
            [merged[k][1] for k in keys],
        )
        rows = await self._store._run(lambda pool: pool.fetch(_COUNT, *args))
        values = {(r["key_id"], r["kind"], r["win"]): float(r["value"]) for r in rows}
        return [values[(h.key_id, h.kind, h.window)] for h in hits]

    async def add_spend(self, rows: list[SpendRow]) -> None:
        merged: dict[tuple[str, str, str, str, str], SpendRow] = {}
        for r in rows:
            m = merged.setdefault(r.group, SpendRow(*r.group))
            m.spend += r.spend
            m.requests += r.requests
            m.input_tokens += r.input_tokens
            m.output_tokens += r.output_tokens
        if not merged:
            return
        cols: list[list[Any]] = [[] for _ in range(9)]
        for m in merged.values():
            for i, v in enumerate((*m.group, m.spend, m.requests, m.input_tokens, m.output_tokens)):
                cols[i].append(v)
        await self._store._run(lambda pool: pool.execute(_SPEND, *cols))

    async def spend_rows(self, start_day: str, end_day: str, key_id: str | None) -> list[SpendRow]:
        rows = await self._store._run(
            lambda pool: pool.fetch(
                "SELECT day, key_id, team_id, end_user, model, spend, requests, input_tokens, output_tokens"
                " FROM rg_spend WHERE day >= $1 AND day <= $2 AND ($3::text IS NULL OR key_id = $3)",
                start_day,
                end_day,
                key_id,
            )
        )
        return [SpendRow(*tuple(r)) for r in rows]

    async def response_owner(self, response_id: str) -> str | None:
        value = await self._store._run(
            lambda pool: pool.fetchval("SELECT key_id FROM rg_responses WHERE id = $1", response_id)
        )
        return None if value is None else str(value)

    async def purge_counters(self, now: float) -> None:
        await self._store._run(
            lambda pool: pool.execute("DELETE FROM rg_counters WHERE expires_at > 0 AND expires_at < $1", now)
        )
