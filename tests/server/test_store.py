"""An in-process gateway, so the test can look into its store after requests over real sockets."""

from __future__ import annotations

import httpx
import pytest

from responses_gateway import codec
from responses_gateway.v1 import response_pb2
from tests.server.conftest import MODEL
from tests.support.sse import iter_frames


@pytest.fixture(scope="module")
def inhttp(inproc):
    with httpx.Client(base_url=inproc.http_base, timeout=30) as c:
        yield c


def stream(http, body):
    with http.stream("POST", "/v1/responses", json={"model": MODEL, "stream": True, **body}) as r:
        assert r.status_code == 200
        return [f.json() for f in iter_frames(r) if f.data != "[DONE]"]


def test_stream_is_stored_before_the_terminal_event(inproc, inhttp, fake):
    events = stream(inhttp, {"input": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})
    rid = events[-1]["response"]["id"]
    stored = inproc.run(inproc.gw.store.get(rid))
    assert stored is not None
    assert stored.response.status == response_pb2.RESPONSE_STATUS_COMPLETED
    assert codec.to_json(stored.response) == events[-1]["response"]
    assert stored.deployment == MODEL
    assert stored.upstream_id.endswith(fake.api_base)
    texts = [codec.to_json(i)["content"] for i in stored.input_items]
    assert texts == [[{"type": "input_text", "text": "a"}], [{"type": "input_text", "text": "b"}]]
    assert all(i.message.id.startswith("msg_") for i in stored.input_items)
    # Foreground responses keep no event log.
    assert inproc.run(inproc.gw.store.read_events(rid, -1)) == []


def test_store_false_leaves_nothing(inproc, inhttp, fake):
    events = stream(inhttp, {"input": "x", "store": False})
    rid = events[-1]["response"]["id"]
    assert inproc.run(inproc.gw.store.get(rid)) is None
    unary = inhttp.post("/v1/responses", json={"model": MODEL, "input": "x", "store": False}).json()
    assert inproc.run(inproc.gw.store.get(unary["id"])) is None
    assert all(r.body["store"] is False for r in fake.create_requests)


def test_background_run_logs_its_events(inproc, inhttp, fake):
    events = stream(inhttp, {"input": "x", "background": True})
    rid = events[-1]["response"]["id"]
    assert events[-1]["type"] == "response.completed" and events[-1]["response"]["background"] is True
    logged = inproc.run(inproc.gw.store.read_events(rid, -1))
    assert [codec.to_json(e) for e in logged] == events
    stored = inproc.run(inproc.gw.store.get(rid))
    assert stored.response.background and stored.response.status == response_pb2.RESPONSE_STATUS_COMPLETED


def test_delete_removes_items_and_events(inproc, inhttp, fake):
    events = stream(inhttp, {"input": "x", "background": True})
    rid = events[-1]["response"]["id"]
    assert inhttp.delete(f"/v1/responses/{rid}").json() == {
        "id": rid,
        "object": "response.deleted",
        "deleted": True,
    }
    assert inproc.run(inproc.gw.store.get(rid)) is None
    assert inproc.run(inproc.gw.store.read_events(rid, -1)) == []
    assert inhttp.get(f"/v1/responses/{rid}").status_code == 404


def test_background_events_reach_the_store_while_the_run_is_still_going(inproc, inhttp, fake):
    """stream_event_flush_ms bounds how long an event waits for the store, however slowly they come:
    a second replica following the run would read it from there."""
    import time

    fake.event_delay = 0.3
    try:
        with inhttp.stream(
            "POST", "/v1/responses", json={"model": MODEL, "input": "x", "stream": True, "background": True}
        ) as r:
            frames = iter_frames(r)
            first = next(frames).json()
            rid = first["response"]["id"]
            next(frames)  # response.in_progress
            time.sleep(0.5)  # well past the 50 ms flush interval, long before the upstream finishes
            logged = inproc.run(inproc.gw.store.read_events(rid, -1))
            stored_status = inproc.run(inproc.gw.store.get(rid)).response.status
            rest = [f.json() for f in frames if f.data != "[DONE]"]
    finally:
        fake.event_delay = 0.0
    assert stored_status == response_pb2.RESPONSE_STATUS_IN_PROGRESS
    assert [e.sequence_number for e in logged][:2] == [0, 1]
    assert rest[-1]["type"] == "response.completed"
