"""The store suites run against every backend: SQLite in a temp dir, and real PostgreSQL and Redis
servers started on loopback for the session (tests/support/servers.py)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from responses_gateway.config.models import StoreSettings
from responses_gateway.store.base import ResponseStore
from responses_gateway.store.factory import open_store
from tests.support.servers import Server, postgres_server, redis_server

BACKENDS = ("sqlite", "postgres", "redis")
_fresh = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis() -> Iterator[Server]:
    with redis_server() as server:
        yield server


def fresh_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    """Settings for an empty store of `backend` (a new database, Redis db or file per test)."""
    if backend == "sqlite":
        return StoreSettings(type="sqlite", path=str(tmp_path / "responses.db"))
    if backend == "postgres":
        import asyncpg  # noqa: F401  (only to fail early if the driver is missing)

        server: Server = request.getfixturevalue("postgres")
        name = f"t{next(_fresh)}"
        import subprocess

        subprocess.run(
            ["psql", server.url, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True
        )
        return StoreSettings(type="postgres", url=server.url.rsplit("/", 1)[0] + f"/{name}")
    server = request.getfixturevalue("redis")
    import redis as redis_lib

    redis_lib.Redis.from_url(server.url).flushall()
    return StoreSettings(type="redis", url=server.url)


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
