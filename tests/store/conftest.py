"""The store suites run against every backend: SQLite in a temp dir, and real PostgreSQL and Redis
servers started on loopback for the session (tests/support/servers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from responses_gateway.config.models import StoreSettings
from responses_gateway.store.base import ResponseStore
from responses_gateway.store.factory import open_store
from tests.support.servers import Server, new_database

BACKENDS = ("sqlite", "postgres", "redis")


def fresh_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    """Settings for an empty store of `backend` (a new database or file per test; Redis flushed)."""
    if backend == "sqlite":
        return StoreSettings(type="sqlite", path=str(tmp_path / "responses.db"))
    server: Server = request.getfixturevalue(backend)
    return StoreSettings(type=backend, url=new_database(server))  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    return fresh_database(request.param, request, tmp_path)


OpenStore = Callable[[], Awaitable[ResponseStore]]


@pytest.fixture
async def open_stores(settings: StoreSettings) -> AsyncIterator[OpenStore]:
    """Opens stores on the same database (two of them = two replicas), all closed after the test."""
    opened: list[ResponseStore] = []

    async def make() -> ResponseStore:
        store = await open_store(settings)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_stores: OpenStore) -> ResponseStore:
    return await open_stores()
