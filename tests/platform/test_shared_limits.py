"""Two gateway processes sharing one store (real PostgreSQL and Redis): a key made on one works on the
other, its rpm limit and its budget hold across both (the counters are the store's), and each sees
only the key's own responses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.platform.conftest import auth, config, create, new_key
from tests.support.process import GatewayProcess
from tests.support.servers import Server, new_database


@pytest.fixture(scope="module", params=["postgres", "redis"])
def pair(
    request: pytest.FixtureRequest, fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    server: Server = request.getfixturevalue(request.param)
    tmp: Path = tmp_path_factory.mktemp(f"shared-{request.param}")
    path = config(tmp / "gateway.json", fake.api_base, {"type": request.param, "url": new_database(server)})
    a = GatewayProcess(path, cwd=tmp, grace=1).start()
    try:
        b = GatewayProcess(path, cwd=tmp, grace=1).start()
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def fresh_minute() -> None:
    if time.time() % 60 > 50:
        time.sleep(60 - time.time() % 60 + 0.1)


def test_rpm_holds_across_replicas(pair: tuple[GatewayProcess, GatewayProcess]) -> None:
    a, b = pair
    key = new_key(a, rpm_limit=3)["key"]
    fresh_minute()
    statuses = [create(gw, key).status_code for gw in (a, b, a)]
    assert statuses == [200, 200, 200]
    over = create(b, key)
    assert over.status_code == 429, over.text
    assert over.headers["x-ratelimit-remaining-requests"] == "0" and over.headers["retry-after"]
    assert create(a, key).status_code == 429


def test_budget_holds_across_replicas(pair: tuple[GatewayProcess, GatewayProcess]) -> None:
    a, b = pair
    key = new_key(b, max_budget=1e-9)["key"]
    assert create(a, key).status_code == 200
    # A's cost reaches the store within its flush interval (0.5 s).
    deadline = time.monotonic() + 5
    while (r := create(b, key)).status_code == 200:
        assert time.monotonic() < deadline, "replica B never saw the spend of replica A"
        time.sleep(0.2)
    assert r.status_code == 429 and r.json()["error"]["code"] == "insufficient_quota"


def test_isolation_and_spend_across_replicas(pair: tuple[GatewayProcess, GatewayProcess]) -> None:
    a, b = pair
    owner, other = new_key(a)["key"], new_key(b)["key"]
    made = create(a, owner)
    assert made.status_code == 200
    rid, cost = made.json()["id"], made.json()["usage"]["cost"]
    url = f"{b.http_base}/v1/responses/{rid}"
    assert httpx.get(url, headers=auth(other), timeout=30).status_code == 404
    assert httpx.get(url, headers=auth(owner), timeout=30).status_code == 200
    info = httpx.get(f"{b.http_base}/key/info", params={"key": owner}, headers=auth(owner), timeout=30)
    deadline = time.monotonic() + 5
    while info.json()["info"]["spend"] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        info = httpx.get(f"{b.http_base}/key/info", headers=auth(owner), timeout=30)
    assert info.json()["info"]["spend"] == pytest.approx(cost, rel=1e-9)
