"""Opens the store the config names."""

from __future__ import annotations

import sys
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from responses_gateway.config.models import StoreSettings
from responses_gateway.store.base import ResponseStore, StoreUnavailable
from responses_gateway.store.keys import KeyStore


def redact_url(url: str) -> str:
    """The URL without its password, for messages (`postgresql://gw:***@db:5432/gw`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def describe_store(settings: StoreSettings) -> str:
    if settings.type == "sqlite":
        return settings.path
    return redact_url(settings.url or "")


async def open_store(
    settings: StoreSettings, *, on_unavailable: Callable[[StoreUnavailable], None] | None = None
) -> ResponseStore:
    """Raises StoreUnavailable when the store cannot be opened; later failures go to `on_unavailable`."""
    store: ResponseStore
    if settings.type == "postgres":
        from responses_gateway.store.postgres import PostgresStore  # the driver loads only when used

        store = PostgresStore(settings.url or "", ttl=settings.ttl, on_unavailable=on_unavailable)
    elif settings.type == "redis":
        from responses_gateway.store.redis import RedisStore

        store = RedisStore(settings.url or "", ttl=settings.ttl, on_unavailable=on_unavailable)
    else:
        from responses_gateway.store.sqlite import SqliteStore

        store = SqliteStore(settings.path, ttl=settings.ttl, on_unavailable=on_unavailable)
    try:
        await store.open()
    except BaseException:
        await store.close()
        raise
    return store


def key_store(store: ResponseStore) -> KeyStore:
    """The key store on the same backend and connection as `store` (store/keys.py)."""
    from responses_gateway.store.sqlite import SqliteStore

    # A PostgreSQL or Redis store means its module (and driver) is loaded; otherwise neither needs to be.
    postgres = sys.modules.get("responses_gateway.store.postgres")
    redis = sys.modules.get("responses_gateway.store.redis")
    if postgres is not None and isinstance(store, postgres.PostgresStore):
        from responses_gateway.store.postgres_keys import PostgresKeys

        return PostgresKeys(store)
    if redis is not None and isinstance(store, redis.RedisStore):
        from responses_gateway.store.redis_keys import RedisKeys

        return RedisKeys(store)
    if isinstance(store, SqliteStore):
        from responses_gateway.store.sqlite_keys import SqliteKeys

        return SqliteKeys(store)
    raise TypeError(f"no key store for {type(store).__name__}")
