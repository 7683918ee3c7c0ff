"""Opens the store the config names."""

from __future__ import annotations

from responses_gateway.config.models import StoreSettings
from responses_gateway.store.base import ResponseStore
from responses_gateway.store.sqlite import SqliteStore


async def open_store(settings: StoreSettings) -> ResponseStore:
    if settings.type != "sqlite":
        raise NotImplementedError(f"store type {settings.type!r} is not available yet")
    store = SqliteStore(settings.path)
    await store.open()
    return store
