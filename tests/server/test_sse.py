"""Raw HTTP against the REST shim: SSE framing, schema conformance, real streaming, mid-stream failures."""

from __future__ import annotations

import json

import pytest

from tests.server.conftest import MODEL
from tests.server.test_grpc import wait_for
from tests.support.sse import iter_frames

SCENARIOS = ["text", "function_calls", "reasoning", "refusal", "incomplete"]
TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


def stream_frames(http, body):
    with http.stream("POST", "/v1/responses", json={"model": MODEL, "stream": True, **body}) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        return list(iter_frames(r))


def check_framing(frames, spec):
    """`event: <type>` + one `data:` line per event, sequence numbers 0.. without gaps, then [DONE]."""
    assert frames[-1].event is None and frames[-1].data_lines == ["[DONE]"]
    events = []
    for f in frames[:-1]:
        assert len(f.data_lines) == 1, f.raw
        event = f.json()
        assert f.event == event["type"], f.raw
        assert f.raw == f"event: {event['type']}\ndata: {f.data}"
        spec.check("ResponseStreamEvent", event)
        events.append(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert sum(e["type"] in TERMINAL for e in events) == 1 and events[-1]["type"] in TERMINAL
    for e in events:
        if "response" in e:
            spec.check("Response", e["response"])
    return events


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_sse_framing_and_schemas(http, fake, spec, scenario):
    fake.enqueue(scenario)
    events = check_framing(
        stream_frames(http, {"input": "hi", "include": ["reasoning.encrypted_content"]}), spec
    )
    final = events[-1]["response"]
    assert final["status"] == ("incomplete" if scenario == "incomplete" else "completed")
    assert final["id"] == events[0]["response"]["id"]
    # Every output_index names the item the stream added at that position.
    added = [e["item"]["id"] for e in events if e["type"] == "response.output_item.added"]
    for e in events:
        if "output_index" in e and "item_id" in e:
            assert added[e["output_index"]] == e["item_id"]
    assert [o["id"] for o in final["output"]] == added

    stored = http.get(f"/v1/responses/{final['id']}")
    assert stored.status_code == 200
    spec.check("Response", stored.json())
    assert stored.json()["output"] == final["output"]

    fake.enqueue(scenario)
    unary = http.post("/v1/responses", json={"model": MODEL, "input": "hi"})
    assert unary.status_code == 200 and unary.headers["content-type"] == "application/json"
    spec.check("Response", unary.json())
    items = http.get(f"/v1/responses/{unary.json()['id']}/input_items")
    assert items.status_code == 200
    for item in items.json()["data"]:
        spec.check("ItemResource", item)


def test_mock_model_stream_conforms(http, fake, spec):
    events = check_framing(stream_frames(http, {"model": "mock", "input": "hi"}), spec)
    assert (
        events[-1]["response"]["output"][0]["content"][0]["text"] == "Hello from the end-to-end mock model."
    )
    assert fake.create_requests == []


def test_streaming_is_incremental(http, fake, wire):
    """The first event reaches the client while the upstream is still producing the rest."""
    fake.event_delay = 0.15
    with http.stream("POST", "/v1/responses", json={"model": MODEL, "input": "hi", "stream": True}) as r:
        frames = iter_frames(r)
        first = next(frames)
        assert json.loads(first.data)["type"] == "response.created"
        upstream = wire.creates()[-1]
        assert not upstream.completed, "the gateway buffered the whole upstream stream"
        sent_when_first_arrived = upstream.chunks_sent
        rest = list(frames)
    assert rest[-1].data == "[DONE]"
    assert upstream.completed and not upstream.client_disconnected
    assert sent_when_first_arrived < upstream.chunks_sent


@pytest.mark.parametrize(
    ("scenario", "says"),
    [
        ("error_event", "An error occurred while processing your request"),
        ("disconnect", "closed the connection"),
    ],
)
def test_upstream_failure_mid_stream(http, fake, spec, scenario, says):
    fake.enqueue(scenario)
    frames = stream_frames(http, {"input": "hi"})
    events = check_framing(frames, spec)
    failed = events[-1]
    assert failed["type"] == "response.failed"
    response = failed["response"]
    assert response["status"] == "failed"
    assert says in response["error"]["message"]
    assert response["error"]["code"] == "server_error"
    assert any(e["type"] == "response.output_text.delta" for e in events)
    if scenario == "disconnect":
        # The items the client was told about are on the failed response the gateway made up.
        added = [e["item"]["id"] for e in events if e["type"] == "response.output_item.added"]
        assert [o["id"] for o in response["output"]] == added

    stored = http.get(f"/v1/responses/{response['id']}")
    assert stored.status_code == 200
    assert stored.json()["status"] == "failed"
    assert says in stored.json()["error"]["message"]

    # The server keeps serving.
    ok = http.post("/v1/responses", json={"model": MODEL, "input": "again"})
    assert ok.status_code == 200 and ok.json()["status"] == "completed"


@pytest.mark.parametrize(("scenario", "status"), [("error_event", 500), ("disconnect", 503)])
def test_upstream_failure_non_streaming(http, fake, scenario, status):
    fake.enqueue(scenario)
    r = http.post("/v1/responses", json={"model": MODEL, "input": "hi"})
    assert r.status_code == status
    err = r.json()["error"]
    assert err["type"] == "server_error" and err["message"]
    assert http.post("/v1/responses", json={"model": MODEL, "input": "again"}).status_code == 200


def test_client_hangs_up_mid_stream(http, fake, wire):
    """Closing the HTTP stream stops the upstream call and the stored response says cancelled."""
    fake.event_delay = 0.2  # 17 events: ~3.4 s upstream
    with http.stream("POST", "/v1/responses", json={"model": MODEL, "input": "hi", "stream": True}) as r:
        frames = iter_frames(r)
        created = next(frames).json()
        assert created["type"] == "response.created"
        # leaving the block closes the connection
    upstream = wire.creates()[-1]
    wait_for(lambda: upstream.client_disconnected or upstream.completed, "the upstream call to end")
    assert upstream.client_disconnected, "the gateway kept reading the upstream after the client left"
    rid = created["response"]["id"]
    stored = wait_for(
        lambda: (g := http.get(f"/v1/responses/{rid}").json())["status"] == "cancelled" and g,
        "the stored response to say cancelled",
    )
    assert stored["id"] == rid
    fake.event_delay = 0
    assert http.post("/v1/responses", json={"model": MODEL, "input": "again"}).json()["status"] == "completed"
