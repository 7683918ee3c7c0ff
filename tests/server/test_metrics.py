"""/metrics: bounded label sets whatever clients ask for, and the key / port settings that protect it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from responses_gateway.v1 import responses_service_pb2 as rs
from responses_gateway.v1 import responses_service_pb2_grpc
from tests.server.conftest import MASTER_KEY, write_config
from tests.server.test_errors import openai_error
from tests.support.process import GatewayProcess

ERRORS = "responses_gateway_errors_total"
KEY = {"authorization": f"Bearer {MASTER_KEY}"}
GET_RESPONSE = "/responses_gateway.v1.ResponsesService/GetResponse"
STREAM_GET = "/responses_gateway.v1.ResponsesService/StreamGetResponse"
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Series:
    """Every sample of the exposition: (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def errors(series: Series, operation: str, reason: str) -> float:
    return series.get((ERRORS, (("operation", operation), ("reason", reason))), 0.0)


def scrape(http: httpx.Client, **kwargs: Any) -> tuple[str, Series]:
    r = http.get("/metrics", **kwargs)
    assert r.status_code == 200, r.text
    return r.text, parse(r.text)


def rid() -> str:
    return f"resp_{uuid.uuid4().hex}"


# --------------------------------------------------------------------------------------- cardinality
N = 40  # unknown ids are also asked of the (fake) upstream, so each costs a round trip there


def test_random_ids_add_no_series_rest(http: httpx.Client) -> None:
    asked: list[str] = []

    def hit(n: int) -> None:
        for _ in range(n):
            ids = [rid() for _ in range(4)]
            asked.extend(ids)
            assert http.get(f"/v1/responses/{ids[0]}").status_code == 404
            assert http.delete(f"/responses/{ids[1]}").status_code == 404
            assert http.put(f"/v1/responses/{ids[2]}").status_code == 405
            assert http.get(f"/v1/no-such-thing/{ids[3]}").status_code == 404

    hit(1)  # every kind once, so each series exists before the count
    _, before = scrape(http)
    hit(N)
    text, after = scrape(http)

    assert set(after) == set(before), set(after) ^ set(before)
    assert not [i for i in asked if i in text], "a requested id is in /metrics"
    assert errors(after, "/v1/responses/{response_id}", "RESPONSE_NOT_FOUND") == (
        errors(before, "/v1/responses/{response_id}", "RESPONSE_NOT_FOUND") + N
    )
    assert errors(after, "/responses/{response_id}", "RESPONSE_NOT_FOUND") == (
        errors(before, "/responses/{response_id}", "RESPONSE_NOT_FOUND") + N
    )
    # Method not allowed: a known route, so its template; no route at all: one fixed label.
    assert errors(after, "/v1/responses/{response_id}", "INVALID_REQUEST") >= N
    assert errors(after, "unmatched", "NOT_FOUND") == errors(before, "unmatched", "NOT_FOUND") + N


def test_unauthenticated_random_ids_are_counted_under_the_template(secured: GatewayProcess) -> None:
    with httpx.Client(base_url=secured.http_base, timeout=30) as http:
        asked = []
        for i in range(101):
            asked.append(rid())
            assert http.get(f"/v1/responses/{asked[-1]}/input_items").status_code == 401
            if i == 0:
                _, before = scrape(http)  # /metrics is open: require_key is off on this gateway
        text, after = scrape(http)
    assert set(after) == set(before), set(after) ^ set(before)
    assert not [i for i in asked if i in text]
    template = "/v1/responses/{response_id}/input_items"
    assert errors(after, template, "UNAUTHENTICATED") == errors(before, template, "UNAUTHENTICATED") + 100


def test_random_ids_add_no_series_grpc(gateway: GatewayProcess, http: httpx.Client) -> None:
    asked: list[str] = []
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)

        def hit(n: int) -> None:
            for _ in range(n):
                asked.append(rid())
                with pytest.raises(grpc.RpcError) as err:
                    stub.GetResponse(rs.GetResponseRequest(response_id=asked[-1]), timeout=10)
                assert err.value.code() == grpc.StatusCode.NOT_FOUND
                asked.append(rid())
                with pytest.raises(grpc.RpcError) as err:
                    list(stub.StreamGetResponse(rs.GetResponseRequest(response_id=asked[-1]), timeout=10))
                assert err.value.code() == grpc.StatusCode.NOT_FOUND

        hit(1)
        _, before = scrape(http)
        hit(N)
    text, after = scrape(http)
    assert set(after) == set(before), set(after) ^ set(before)
    assert not [i for i in asked if i in text]
    for method in (GET_RESPONSE, STREAM_GET):
        assert errors(after, method, "RESPONSE_NOT_FOUND") == errors(before, method, "RESPONSE_NOT_FOUND") + N


def test_grpc_unauthenticated_is_counted_under_the_method(secured: GatewayProcess) -> None:
    with (
        grpc.insecure_channel(secured.grpc_target) as channel,
        httpx.Client(base_url=secured.http_base) as http,
    ):
        stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        _, before = scrape(http)
        for _ in range(20):
            with pytest.raises(grpc.RpcError) as err:
                stub.GetResponse(rs.GetResponseRequest(response_id=rid()), timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        _, after = scrape(http)
    assert (
        errors(after, GET_RESPONSE, "UNAUTHENTICATED") == errors(before, GET_RESPONSE, "UNAUTHENTICATED") + 20
    )


# --------------------------------------------------------------------------------------- protection
@pytest.fixture
def spawn_with(upstream: Any, tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """A gateway of the test's own with these gateway_settings (and optionally a master key)."""
    started: list[GatewayProcess] = []

    def spawn(settings: dict[str, Any], master_key: str | None = None) -> GatewayProcess:
        where = tmp_path / f"gw{len(started)}"
        where.mkdir()
        cfg = write_config(
            where / "gateway.yaml",
            upstream[0].api_base,
            where / "responses.db",
            master_key=master_key,
            settings=settings,
        )
        started.append(GatewayProcess(cfg, cwd=where, grace=2).start())
        return started[-1]

    yield spawn
    for gw in started:
        gw.stop()


def test_metrics_require_the_master_key(spawn_with: Callable[..., GatewayProcess]) -> None:
    gw = spawn_with({"metrics": {"require_key": True}}, master_key=MASTER_KEY)
    with httpx.Client(base_url=gw.http_base, timeout=30) as http:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic x"}):
            err = openai_error(http.get("/metrics", headers=headers), 401)
            assert err["code"] == "invalid_api_key"
        text, _ = scrape(http, headers=KEY)
        assert ERRORS in text
        # The refusals themselves are counted, under the route.
        assert errors(parse(text), "/metrics", "UNAUTHENTICATED") == 3
        assert http.get("/healthz").status_code == 200  # probes still need no key


def test_require_key_without_a_master_key_leaves_metrics_open(
    spawn_with: Callable[..., GatewayProcess],
) -> None:
    gw = spawn_with({"metrics": {"require_key": True}})
    with httpx.Client(base_url=gw.http_base, timeout=30) as http:
        scrape(http)
    assert "require_key is set but there is no master key" in gw.log


def test_metrics_on_a_port_of_their_own(spawn_with: Callable[..., GatewayProcess]) -> None:
    gw = spawn_with({"metrics": {"require_key": True, "port": 0}}, master_key=MASTER_KEY)
    found = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", gw.log)
    assert found, gw.log
    port = int(found.group(1))
    assert port not in (gw.http_port, gw.grpc_port)
    with (
        httpx.Client(base_url=gw.http_base, timeout=30) as rest,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as metrics,
    ):
        # Not on the REST port any more, with or without the key.
        openai_error(rest.get("/metrics", headers=KEY), 404)
        assert rest.get("/v1/models", headers=KEY).status_code == 200
        # On its own port, behind the key.
        openai_error(metrics.get("/metrics"), 401)
        _, series = scrape(metrics, headers=KEY)
        assert errors(series, "unmatched", "NOT_FOUND") == 1  # the REST call above, same registry
        # Nothing else is served there.
        openai_error(metrics.get("/v1/models", headers=KEY), 404)
        openai_error(metrics.get("/healthz"), 404)
