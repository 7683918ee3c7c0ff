"""Opens the store the config names."""

from __future__ import annotations

from collections.abc import Callable

from responses_gateway.config.models import StoreSettings
from responses_gateway.store.base import ResponseStore, StoreUnavailable
from responses_gateway.store.sqlite import SqliteStore


async def open_store(
    settings: StoreSettings, *, on_unavailable: Callable[[StoreUnavailable], None] | None = None
) -> ResponseStore:
    """Raises StoreUnavailable when the store cannot be opened; later failures go to `on_unavailable`."""
    if settings.type != "sqlite":
        raise NotImplementedError(f"store type {settings.type!r} is not available yet")
    store = SqliteStore(settings.path, on_unavailable=on_unavailable)
    try:
        await store.open()
    except BaseException:
        await store.close()
        raise
    return store
