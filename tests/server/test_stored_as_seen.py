"""What the store holds is what the client saw: a retried unary call leaves one record, and an
upstream answer too large to relay fails cleanly instead of being stored as `completed`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from responses_gateway.contract.events import event_type
from responses_gateway.v1 import responses_service_pb2_grpc
from tests.fakes.chat_upstream import FakeChat
from tests.server.test_grpc import create_request
from tests.support.inprocess import InProcessGateway
from tests.support.process import GatewayProcess
from tests.support.sse import iter_frames

KEY = "sk-chat-upstream-0123456789"


def rows(db: Path) -> list[tuple[str, str]]:
    """(id, status) of every stored response, read from the database file itself."""
    from responses_gateway.v1 import response_pb2

    with sqlite3.connect(db) as conn:
        blobs = conn.execute("SELECT response FROM responses").fetchall()
    out = []
    for (blob,) in blobs:
        r = response_pb2.Response.FromString(blob)
        out.append((r.id, response_pb2.ResponseStatus.Name(r.status)))
    return out


@pytest.fixture
def chat_gateway(tmp_path: Path) -> Iterator[tuple[FakeChat, InProcessGateway, Path]]:
    fake = FakeChat(api_key=KEY)
    with fake.serve() as base:
        db = tmp_path / "responses.db"
        config = {
            "model_list": [
                {
                    "model_name": "llama",
                    "litellm_params": {
                        "model": "hosted_vllm/llama",
                        "api_base": f"{base}/v1",
                        "api_key": KEY,
                    },
                }
            ],
            "router_settings": {"num_retries": 2},
            "gateway_settings": {"store": {"type": "sqlite", "path": str(db)}},
        }
        path = tmp_path / "gateway.json"
        path.write_text(json.dumps(config))
        gw = InProcessGateway(path, grace_seconds=1)
        try:
            yield fake, gw, db
        finally:
            gw.close()


def test_a_retried_unary_call_leaves_one_record(chat_gateway: Any) -> None:
    fake, gw, db = chat_gateway
    fake.disconnect_after(2, times=2)  # two attempts break off mid-stream, the third completes
    with httpx.Client(base_url=gw.http_base, timeout=30) as http:
        r = http.post("/v1/responses", json={"model": "llama", "input": "hi"})
    assert r.status_code == 200, r.text
    assert len(fake.requests) == 3
    assert rows(db) == [(r.json()["id"], "RESPONSE_STATUS_COMPLETED")]


def test_a_unary_call_whose_every_attempt_broke_off_stores_nothing(chat_gateway: Any) -> None:
    fake, gw, db = chat_gateway
    fake.disconnect_after(2)
    with httpx.Client(base_url=gw.http_base, timeout=30) as http:
        r = http.post("/v1/responses", json={"model": "llama", "input": "hi"})
    assert r.status_code == 503, r.text
    assert len(fake.requests) == 3
    assert rows(db) == []


# ------------------------------------------------------------------------------- response size
def test_an_answer_larger_than_the_limit_fails_cleanly(spawn_gateway: Any, fake: Any) -> None:
    # The text transcript is ~1.6 kB as a body and ~8 kB as a stream, its first event under 2 kB.
    unary_gw: GatewayProcess = spawn_gateway(
        grace=1, params={"max_response_bytes": 1000}, router={"num_retries": 0}
    )
    with httpx.Client(base_url=unary_gw.http_base, timeout=30) as http:
        unary = http.post("/v1/responses", json={"model": "gpt-4.1", "input": "hi"})
    assert unary.status_code >= 500 and "max_response_bytes" in unary.json()["error"]["message"]

    gw: GatewayProcess = spawn_gateway(
        grace=1, params={"max_response_bytes": 4000}, router={"num_retries": 0}
    )
    with httpx.Client(base_url=gw.http_base, timeout=30) as http:
        with http.stream(
            "POST", "/v1/responses", json={"model": "gpt-4.1", "input": "hi", "stream": True}
        ) as r:
            frames = list(iter_frames(r))
        assert frames[-2].event == "response.failed", [f.event for f in frames]
        failed = frames[-2].json()["response"]
        assert "max_response_bytes" in failed["error"]["message"]
        stored = http.get(f"/v1/responses/{failed['id']}").json()
        assert stored["status"] == "failed" and stored["error"] == failed["error"]
    with grpc.insecure_channel(gw.grpc_target) as channel:
        stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        events = list(stub.StreamResponse(create_request(), timeout=30))
        assert event_type(events[-1]) == "response.failed"
