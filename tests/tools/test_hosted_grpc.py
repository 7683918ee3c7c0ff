"""Hosted tools relayed from an OpenAI-native deployment (the recorded transcripts in
tests/transcripts/openai) give the same items and events over gRPC `StreamResponse` /
`CreateResponse` as over REST: each gRPC message, read back into JSON by the codec, equals the SSE
event (or the unary response) of the same transcript, and validates against OpenAI's spec."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from responses_gateway import codec
from responses_gateway.v1 import request_pb2, responses_service_pb2_grpc
from tests.support.sse import sse_events
from tests.tools.conftest import Env
from tests.tools.helpers import SPECS

HOSTED: dict[str, dict[str, Any]] = {
    "web_search": {"type": "web_search"},
    "file_search": {"type": "file_search", "vector_store_ids": ["vs_1"]},
    "image_generation": {"type": "image_generation", "partial_images": 1},
    "code_interpreter": {"type": "code_interpreter", "container": {"type": "auto"}},
    "computer_use_preview": {
        "type": "computer_use_preview",
        "display_width": 1024,
        "display_height": 768,
        "environment": "browser",
    },
    "shell": {"type": "shell"},
    "apply_patch": {"type": "apply_patch"},
    "local_shell": {"type": "local_shell"},
}


def _rest_stream(http: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    """SSE events, each valid under OpenAI's spec (Open Responses lacks most hosted tools)."""
    with http.stream("POST", "/responses", json={**body, "stream": True}) as r:
        assert r.status_code == 200, r.read()
        events = sse_events(r)
    for e in events:
        SPECS.openai.check_event(e)
    return events


_IDS = frozenset({"id", "call_id", "item_id"})
_TIMES = frozenset({"created_at", "completed_at"})  # the fake stamps the time of each call


def _same_ids(value: Any, seen: dict[str, str] | None = None) -> Any:
    """`value` with each id replaced by its order of first appearance (the fake makes new ids for
    every call, so two calls are equal when everything else is, and ids repeat at the same places),
    and each timestamp by whether it is set."""
    seen = {} if seen is None else seen
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in _IDS and isinstance(v, str):
                out[k] = seen.setdefault(v, f"id{len(seen)}")
            elif k in _TIMES:
                out[k] = v is not None
            else:
                out[k] = _same_ids(v, seen)
        return out
    if isinstance(value, list):
        return [_same_ids(v, seen) for v in value]
    return value


def _body(scenario: str) -> dict[str, Any]:
    return {"model": "gpt-hosted", "input": "use the tool", "tools": [HOSTED[scenario]]}


@pytest.mark.parametrize("scenario", sorted(HOSTED))
def test_stream_same_over_grpc_and_rest(
    env: Env, http: httpx.Client, stub: responses_service_pb2_grpc.ResponsesServiceStub, scenario: str
) -> None:
    env.openai.scenario = scenario
    rest = _rest_stream(http, _body(scenario))
    req = codec.from_json(request_pb2.CreateResponseRequest(), {**_body(scenario), "stream": True})
    grpc_events = [codec.to_json(e) for e in stub.StreamResponse(req, timeout=30)]
    for e in grpc_events:
        SPECS.openai.check_event(e)
    assert _same_ids(grpc_events) == _same_ids(rest)
    final = rest[-1]["response"]
    # The tool's own items came through, whatever their kind.
    assert any(i["type"] not in ("message", "reasoning") for i in final["output"]), final["output"]
    types = {e["type"] for e in rest}
    if scenario == "image_generation":
        assert "response.image_generation_call.partial_image" in types


@pytest.mark.parametrize("scenario", sorted(HOSTED))
def test_unary_same_over_grpc_and_rest(
    env: Env, http: httpx.Client, stub: responses_service_pb2_grpc.ResponsesServiceStub, scenario: str
) -> None:
    env.openai.scenario = scenario
    r = http.post("/responses", json=_body(scenario))
    assert r.status_code == 200, r.text
    rest = r.json()
    SPECS.openai.check("Response", rest)
    req = codec.from_json(request_pb2.CreateResponseRequest(), _body(scenario))
    unary = codec.to_json(stub.CreateResponse(req, timeout=30))
    assert _same_ids(unary) == _same_ids(rest)
    assert [r.body.get("stream", False) for r in env.openai.create_requests] == [False, False]  # native unary
