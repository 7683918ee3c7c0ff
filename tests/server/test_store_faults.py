"""The store failing under a running gateway: disk full (SQLite's `max_page_count` on the live
connection) and a file corrupted under it. An in-process gateway, so the test can reach its store's
connection; every call goes over real sockets (HTTP and gRPC)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from responses_gateway.contract.events import event_type
from responses_gateway.transport.grpc.server import REASON_TRAILER, SERVICE_NAMES
from responses_gateway.v1 import response_pb2, responses_service_pb2, responses_service_pb2_grpc
from tests.server.conftest import MODEL, write_config
from tests.server.test_errors import grpc_error
from tests.server.test_grpc import body, create_request, wait_for
from tests.support.inprocess import InProcessGateway
from tests.support.sqlite_full import fill_up, make_room
from tests.support.sse import iter_frames

FULL = "The response store is unavailable: database or disk is full."
MALFORMED = "The response store is unavailable: database disk image is malformed."
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
PROBE_SECONDS = 0.2  # short, so recovery is seen soon; waits below are bounded far above it
# An input that needs pages of its own: on a full store a write that fits in a page's free space
# still succeeds, as it does in SQLite.
BIG = "x" * 20000


def start_gateway(tmp: Path, api_base: str) -> InProcessGateway:
    cfg = write_config(tmp / "gateway.yaml", api_base, tmp / "responses.db")
    config = json.loads(cfg.read_text())
    config["gateway_settings"]["store"]["probe_seconds"] = PROBE_SECONDS
    cfg.write_text(json.dumps(config))
    return InProcessGateway(cfg)


@pytest.fixture(scope="module")
def gw(upstream, tmp_path_factory) -> Iterator[InProcessGateway]:
    gateway = start_gateway(tmp_path_factory.mktemp("faults"), upstream[0].api_base)
    try:
        yield gateway
    finally:
        gateway.close()


@pytest.fixture(scope="module")
def http(gw) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.http_base, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def channel(gw) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(gw.grpc_target) as ch:
        yield ch


@pytest.fixture(scope="module")
def stub(channel) -> responses_service_pb2_grpc.ResponsesServiceStub:
    return responses_service_pb2_grpc.ResponsesServiceStub(channel)


def grpc_health(channel: grpc.Channel, service: str = "") -> tuple[int, str | None]:
    reply, call = health_pb2_grpc.HealthStub(channel).Check.with_call(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    return reply.status, dict(call.trailing_metadata() or ()).get(REASON_TRAILER)


def assert_unhealthy(http: httpx.Client, channel: grpc.Channel, reason: str) -> None:
    r = http.get("/healthz")
    assert r.status_code == 503 and r.json() == {"status": "unavailable", "reason": reason}
    for service in ("", *SERVICE_NAMES):
        assert grpc_health(channel, service) == (NOT_SERVING, reason), service


def healthy(http: httpx.Client, channel: grpc.Channel) -> bool:
    r = http.get("/healthz")
    if r.status_code != 200:
        return False
    assert r.json() == {"status": "ok"}
    return all(grpc_health(channel, s) == (SERVING, None) for s in ("", *SERVICE_NAMES))


def assert_store_unavailable(r: httpx.Response, message: str) -> None:
    assert r.status_code == 503, r.text
    assert r.json() == {
        "error": {"message": message, "type": "server_error", "param": None, "code": "store_unavailable"}
    }


def assert_grpc_unavailable(err: grpc.RpcError, message: str) -> None:
    code, info, _ = grpc_error(err)
    assert code == grpc.StatusCode.UNAVAILABLE
    assert info.reason == "STORE_UNAVAILABLE" and info.metadata["code"] == "store_unavailable"
    assert err.details() == message  # type: ignore[attr-defined]


def rest_stream(http: httpx.Client, **fields: object) -> list[dict[str, object]]:
    with http.stream("POST", "/v1/responses", json={"input": BIG, "stream": True, **fields}) as r:
        assert r.status_code == 200
        frames = list(iter_frames(r))
    assert frames[-1].data == "[DONE]"
    assert all(f.event != "error" for f in frames), [f.raw for f in frames]
    return [f.json() for f in frames[:-1]]


def test_disk_full(gw, http, channel, stub, fake):
    assert wait_for(lambda: healthy(http, channel), "SERVING at start")
    stored = http.post("/v1/responses", json={"model": "mock", "input": "before"}).json()
    gw.run(gw.gw.store.run_raw(fill_up))
    try:
        # Unary, both paths that write: the mock (recorded like a stream) and an upstream's own call.
        for model in ("mock", MODEL):
            r = http.post("/v1/responses", json={"model": model, "input": BIG})
            assert_store_unavailable(r, FULL)
            with pytest.raises(grpc.RpcError) as err:
                stub.CreateResponse(create_request(BIG, model=model), timeout=20)
            assert_grpc_unavailable(err.value, FULL)
        assert_unhealthy(http, channel, FULL)

        # A stream gets all of the text, then a well-formed response.failed rather than completed.
        events = rest_stream(http, model="mock")
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.failed"
        failed = events[-1]["response"]
        assert failed["status"] == "failed" and failed.get("completed_at") is None
        assert failed["error"] == {"code": "store_unavailable", "message": FULL}
        assert not any(e["type"] == "response.completed" for e in events)
        # ...and it was not stored (the store could not take it).
        assert http.get(f"/v1/responses/{failed['id']}").status_code == 404

        grpc_events = list(stub.StreamResponse(create_request(BIG, model="mock"), timeout=20))
        assert event_type(grpc_events[-1]) == "response.failed"
        error = body(grpc_events[-1]).response.error
        assert error.extra_fields["code"].string_value == "store_unavailable" and error.message == FULL
        assert body(grpc_events[-1]).response.status == response_pb2.RESPONSE_STATUS_FAILED

        # A background response is refused, not acknowledged and lost.
        for stream in (False, True):
            r = http.post(
                "/v1/responses", json={"model": "mock", "input": BIG, "background": True, "stream": stream}
            )
            assert_store_unavailable(r, FULL)
        with pytest.raises(grpc.RpcError) as err:
            stub.CreateResponse(create_request(BIG, model="mock", background=True), timeout=20)
        assert_grpc_unavailable(err.value, FULL)

        # Reads still work on a full disk; health stays down while the probe cannot write.
        assert http.get(f"/v1/responses/{stored['id']}").json()["id"] == stored["id"]
        assert_unhealthy(http, channel, FULL)
    finally:
        gw.run(gw.gw.store.run_raw(make_room))

    # Room again: health comes back by itself (the probe), and so does everything else.
    assert wait_for(lambda: healthy(http, channel), "SERVING after the disk has room again")
    r = http.post("/v1/responses", json={"model": "mock", "input": BIG})
    assert r.status_code == 200 and r.json()["status"] == "completed"
    assert http.get(f"/v1/responses/{r.json()['id']}").json()["status"] == "completed"
    events = rest_stream(http, model="mock", background=True)
    assert events[-1]["type"] == "response.completed"


def test_watch_sees_not_serving_then_serving(gw, http, channel):
    """A client watching health (as load balancers do) is told, without polling."""
    assert wait_for(lambda: healthy(http, channel), "SERVING")
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
    try:
        assert next(watch).status == SERVING
        gw.run(gw.gw.store.run_raw(fill_up))
        try:
            # The probe finds it without any request.
            assert next(watch).status == NOT_SERVING
        finally:
            gw.run(gw.gw.store.run_raw(make_room))
        assert next(watch).status == SERVING
    finally:
        watch.cancel()


def corrupt(path: Path) -> Callable[[sqlite3.Connection], None]:
    """Damage the file under the live connection: everything into the main file, every page but the
    first (header and schema) overwritten with bytes no b-tree page starts with, then SQLite's page
    cache dropped, so the next statement reads the damage (as it would after a restart). One function
    on the store's thread, so no write of the gateway's slips in between."""

    def damage(db: sqlite3.Connection) -> None:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.seek(4096)
            f.write(b"\xff" * (size - 4096))
        db.execute("PRAGMA shrink_memory").fetchall()

    return damage


def test_file_corrupted_under_a_running_gateway(upstream, fake, tmp_path):
    gw = start_gateway(tmp_path, upstream[0].api_base)
    fake.event_delay = 0.2  # the background run below is still going when the file breaks
    try:
        with (
            httpx.Client(base_url=gw.http_base, timeout=30) as http,
            grpc.insecure_channel(gw.grpc_target) as channel,
        ):
            rid = http.post("/v1/responses", json={"model": "mock", "input": BIG}).json()["id"]
            body_ = {"model": MODEL, "input": "hi", "stream": True, "background": True}
            with http.stream("POST", "/v1/responses", json=body_) as r:
                frames = iter_frames(r)
                first = [next(frames), next(frames)]
                assert [f.event for f in first] == ["response.created", "response.in_progress"]
                gw.run(gw.gw.store.run_raw(corrupt(tmp_path / "responses.db")))
                rest = list(frames)
            # The run could not be recorded any more: it ends failed, not completed.
            assert rest[-1].data == "[DONE]" and all(f.event != "error" for f in rest)
            events = [f.json() for f in [*first, *rest[:-1]]]
            assert [e["sequence_number"] for e in events] == list(range(len(events)))
            assert events[-1]["type"] == "response.failed"
            assert events[-1]["response"]["error"] == {"code": "store_unavailable", "message": MALFORMED}

            assert_store_unavailable(http.get(f"/v1/responses/{rid}"), MALFORMED)
            stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.GetResponse(responses_service_pb2.GetResponseRequest(response_id=rid), timeout=20)
            assert_grpc_unavailable(err.value, MALFORMED)
            assert_store_unavailable(
                http.post("/v1/responses", json={"model": "mock", "input": "hi"}), MALFORMED
            )
            assert_unhealthy(http, channel, MALFORMED)
    finally:
        gw.close()


def test_health_does_not_flap_while_store_operations_keep_failing():
    """The rule the probe follows (health.py): back to SERVING only after a probe that passed with no
    store failure since the previous probe."""
    from responses_gateway.health import Health
    from responses_gateway.store.base import StoreUnavailable

    health = Health()
    changes: list[str | None] = []
    health.watch(lambda: changes.append(health.reason))
    health.set_serving(True)
    full = StoreUnavailable("database or disk is full")
    health.store_failed(full)
    health.store_probe_passed()  # a request failed since the last probe: still down
    health.store_failed(full)
    health.store_probe_passed()
    assert health.reason == FULL
    health.store_probe_passed()  # a whole interval without failures
    assert health.reason is None
    assert changes == [None, FULL, None]
