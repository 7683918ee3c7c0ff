"""Ids a client sends never steer the gateway's upstream calls: every operation refuses ids that are
not ids (traversal, query, fragment, NUL, control characters, absurd length) on both transports before
anything goes upstream, and ids the gateway does not hold are asked of one upstream at most, briefly.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from responses_gateway.v1 import request_pb2
from responses_gateway.v1 import responses_service_pb2 as rs
from responses_gateway.v1 import responses_service_pb2_grpc as rs_grpc
from tests.server.conftest import MODEL, UPSTREAM_KEY, Observed
from tests.support.process import GatewayProcess, clean_env

BAD_IDS = [
    "../files",
    "..",
    ".",
    "resp_x/../../files",
    "resp_abc?limit=100",
    "resp_abc#fragment",
    "resp_a\x00b",
    "resp_a\nb",
    "resp_a\x7fb",
    "resp_%2e%2e",
    "resp_" + "a" * 200,
    "files",
    "",
]

REST_OPS = [
    ("GET", "/v1/responses/{}"),
    ("GET", "/v1/responses/{}?stream=true"),
    ("DELETE", "/v1/responses/{}"),
    ("POST", "/v1/responses/{}/cancel"),
    ("GET", "/v1/responses/{}/input_items"),
]


def raw_http(port: int, method: str, target: bytes) -> tuple[int, bytes]:
    """One request with the target exactly as given (clients normalise `..` away; attackers do not)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            method.encode() + b" " + target + b" HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n"
            b"connection: close\r\n\r\n"
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def quoted(value: str) -> bytes:
    """The id as a client library would put it in a path: every unsafe byte percent-encoded."""
    from urllib.parse import quote

    return quote(value, safe="").encode()


def test_rest_operations_refuse_ids_that_are_not_ids(gateway: GatewayProcess, wire: Observed) -> None:
    for bad in filter(None, BAD_IDS):  # an empty id is no path segment at all
        # Percent-encoded as SDKs send it, and raw where the request line can carry it as one id (a raw
        # `?` or `#` would end the path: that is a request for another, valid id).
        raw = bad.isprintable() and not set(bad) & set("?#")
        forms = {quoted(bad)} | ({bad.encode()} if raw else set())
        for method, template in REST_OPS:
            path, _, query = template.partition("?")
            for form in forms:
                target = path.replace("{}", "").encode()
                target = target[: target.index(b"/responses/") + 11] + form + path.split("{}")[1].encode()
                if query:
                    target += b"?" + query.encode()
                status, body = raw_http(gateway.http_port, method, target)
                assert 400 <= status < 500, (method, target, status, body[:300])
                error = json.loads(body)["error"]
                assert set(error) >= {"message", "type", "param", "code"}, body
                assert len(error["message"]) < 400, "the error echoes the whole id"
    assert wire.exchanges == [], [(e.method, e.path) for e in wire.exchanges]


def test_grpc_operations_refuse_ids_that_are_not_ids(
    stub: rs_grpc.ResponsesServiceStub, wire: Observed
) -> None:
    calls: list[tuple[str, Any]] = [
        ("GetResponse", lambda i: stub.GetResponse(rs.GetResponseRequest(response_id=i), timeout=10)),
        (
            "StreamGetResponse",
            lambda i: list(stub.StreamGetResponse(rs.GetResponseRequest(response_id=i), timeout=10)),
        ),
        (
            "DeleteResponse",
            lambda i: stub.DeleteResponse(rs.DeleteResponseRequest(response_id=i), timeout=10),
        ),
        (
            "CancelResponse",
            lambda i: stub.CancelResponse(rs.CancelResponseRequest(response_id=i), timeout=10),
        ),
        (
            "ListInputItems",
            lambda i: stub.ListInputItems(rs.ListInputItemsRequest(response_id=i), timeout=10),
        ),
        (
            "CreateResponse(previous_response_id)",
            lambda i: stub.CreateResponse(
                request_pb2.CreateResponseRequest(model=MODEL, previous_response_id=i, input={"text": "hi"}),
                timeout=10,
            ),
        ),
    ]
    for bad in BAD_IDS:
        for name, call in calls:
            if not bad and name.startswith("CreateResponse"):
                continue  # an empty previous_response_id is "none"
            with pytest.raises(grpc.RpcError) as caught:
                call(bad)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, bad, caught.value)
            assert len(caught.value.details() or "") < 400
    assert wire.exchanges == [], [(e.method, e.path) for e in wire.exchanges]


def test_bad_item_id_in_input_items_after(http: httpx.Client, wire: Observed) -> None:
    r = http.get("/v1/responses/resp_abc/input_items", params={"after": "msg_1&limit=5"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "after"
    assert wire.exchanges == []


def test_unknown_but_valid_id_goes_to_the_one_native_upstream_once(
    http: httpx.Client, wire: Observed
) -> None:
    rid = "resp_" + "0" * 48
    r = http.delete(f"/v1/responses/{rid}")
    assert r.status_code == 404, r.text
    assert [(e.method, e.path) for e in wire.exchanges] == [("DELETE", f"/v1/responses/{rid}")]


# --------------------------------------------------------------------------- several native upstreams
class Hanging:
    """A loopback server that accepts connections and never answers (a stuck upstream)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.accepted:
            c.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def several(upstream: Any, tmp_path: Path) -> Iterator[Any]:
    fake = upstream[0]
    hanging = Hanging()
    started: list[GatewayProcess] = []

    def spawn(**settings: Any) -> GatewayProcess:
        def native(name: str, base: str) -> dict[str, Any]:
            return {
                "model_name": name,
                "litellm_params": {"model": f"openai/{MODEL}", "api_base": base, "api_key": UPSTREAM_KEY},
            }

        config = {
            "model_list": [
                native("good", fake.api_base),
                native("unreachable", f"http://127.0.0.1:{closed_port()}/v1"),
                native("hanging", hanging.base),
            ],
            "gateway_settings": {
                "store": {"type": "sqlite", "path": str(tmp_path / f"r{len(started)}.db")},
                **settings,
            },
        }
        path = tmp_path / f"gateway{len(started)}.yaml"
        path.write_text(json.dumps(config))
        gw = GatewayProcess(path, cwd=tmp_path, env=clean_env(), grace=1).start()
        started.append(gw)
        return gw

    yield spawn, hanging
    for gw in started:
        gw.stop()
    hanging.close()


def test_several_native_upstreams_are_not_fanned_out_to(several: Any, wire: Observed) -> None:
    spawn, hanging = several
    gw = spawn()  # native_lookup: auto, and three distinct native upstreams: ask none
    rid = "resp_" + "1" * 48
    with httpx.Client(base_url=gw.http_base, timeout=20) as http:
        for method, path in [("GET", ""), ("DELETE", ""), ("POST", "/cancel"), ("GET", "/input_items")]:
            r = http.request(method, f"/v1/responses/{rid}{path}")
            assert r.status_code == 404, (method, path, r.text)
    assert wire.exchanges == []
    assert hanging.accepted == []


@pytest.mark.parametrize("target", ["good", "unreachable", "hanging"])
def test_native_lookup_asks_only_the_named_upstream_and_answers_404(
    several: Any, wire: Observed, target: str
) -> None:
    spawn, hanging = several
    gw = spawn(native_lookup=target, native_lookup_timeout_seconds=0.5)
    rid = "resp_" + "2" * 48
    with httpx.Client(base_url=gw.http_base, timeout=20) as http:
        started = time.monotonic()
        r = http.delete(f"/v1/responses/{rid}")
        # Bounded by the lookup timeout (0.5 s), not by the upstream or the client: 20 s would mean a hang.
        assert time.monotonic() - started < 15
        assert r.status_code == 404, r.text
        assert r.json()["error"]["message"] == f"Response with id '{rid}' not found."
    seen = [(e.method, e.path) for e in wire.exchanges]
    assert seen == ([("DELETE", f"/v1/responses/{rid}")] if target == "good" else [])
    assert (len(hanging.accepted) > 0) == (target == "hanging")
