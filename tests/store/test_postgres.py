"""What is PostgreSQL's own: migrations applied once when several replicas start together, and a
database of an older schema brought up to date."""

from __future__ import annotations

import asyncio

import asyncpg

from responses_gateway.config.models import StoreSettings
from responses_gateway.store.factory import open_store
from responses_gateway.store.postgres import _MIGRATIONS
from tests.support.servers import Server, new_database


async def test_replicas_starting_together_migrate_once(postgres: Server) -> None:
    url = new_database(postgres)
    settings = StoreSettings(type="postgres", url=url)
    stores = await asyncio.gather(*(open_store(settings) for _ in range(6)))
    try:
        conn = await asyncpg.connect(url)
        try:
            versions = [r["version"] for r in await conn.fetch("SELECT version FROM rg_schema_migrations")]
            tables = {
                r["tablename"]
                for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE tablename LIKE 'rg_%'")
            }
        finally:
            await conn.close()
        assert sorted(versions) == sorted(_MIGRATIONS)
        assert {"rg_responses", "rg_input_items", "rg_events", "rg_schema_migrations"} <= tables
        # Every replica works on the one schema.
        for store in stores:
            await store.probe()
    finally:
        for store in stores:
            await store.close()


async def test_reopening_applies_nothing_again(postgres: Server) -> None:
    settings = StoreSettings(type="postgres", url=new_database(postgres))
    for _ in range(2):
        store = await open_store(settings)
        await store.close()
    conn = await asyncpg.connect(settings.url or "")
    try:
        assert await conn.fetchval("SELECT count(*) FROM rg_schema_migrations") == len(_MIGRATIONS)
    finally:
        await conn.close()
