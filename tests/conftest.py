"""Fixtures every suite may use: the database servers of the shared stores, started once per session
(and only by the suites that ask for them)."""

from __future__ import annotations

import os
from collections.abc import Iterator

# Before the gateway is imported (here or in a server the tests start): every JSON a REST reply sends
# in place of encoding its message is checked against the encoding (codec/shadow.py).
os.environ.setdefault("RESPONSES_GATEWAY_CHECK_SHADOWS", "1")

import pytest

from tests.support.servers import Server, postgres_server, redis_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis() -> Iterator[Server]:
    with redis_server() as server:
        yield server
