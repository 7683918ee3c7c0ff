"""A REST create's unary reply from the OpenAI upstream is the upstream's own JSON, repaired to what the
codec writes (codec/shadow.py), with the gateway's cost in it; a GET, encoded from the store, reads the same."""

from __future__ import annotations

import httpx
import orjson

from responses_gateway.codec import shadow
from tests.fakes.openai_upstream import FakeOpenAI
from tests.server.conftest import MODEL


def test_the_reply_is_the_upstreams_json(http: httpx.Client, fake: FakeOpenAI) -> None:
    r = http.post("/v1/responses", json={"model": MODEL, "input": "Say hello"})
    assert r.status_code == 200, r.text
    # The transcript's own spelling, which encoding the Response again would write as 0.
    assert b'"frequency_penalty":0.0' in r.content
    body = orjson.loads(r.content)
    assert "user" not in body  # the upstream's null, which OpenAI's spec does not allow there
    assert (
        body["usage"]["cost"] > 0 and abs(float(r.headers["x-gateway-cost"]) - body["usage"]["cost"]) < 1e-9
    )
    stored = http.get(f"/v1/responses/{body['id']}")
    assert stored.status_code == 200 and b'"frequency_penalty":0,' in stored.content
    shadow._check(body, stored.json(), "")  # the same JSON, as numbers compare


def test_the_upstream_gets_the_clients_json(http: httpx.Client, fake: FakeOpenAI) -> None:
    """What the client sent goes on as it came (its key order, its `1.0`), without what the codec drops (a null the request cannot hold); an integer sent as 64.0 goes as
    64, as encoding it writes it. Unary and streamed alike."""
    sent = {"input": "Say hello", "temperature": 1.0, "user": None, "max_output_tokens": 64.0, "model": MODEL}
    for stream in (False, True):
        fake.requests.clear()
        r = http.post("/v1/responses", json={**sent, "stream": stream})
        assert r.status_code == 200, r.text
        [got] = fake.create_requests
        body = orjson.loads(got.raw)
        assert list(body)[:3] == ["input", "temperature", "max_output_tokens"], got.raw
        assert b'"temperature":1.0' in got.raw and b'"max_output_tokens":64,' in got.raw
        assert "user" not in body
        assert body.get("stream", False) is stream
