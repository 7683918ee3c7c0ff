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
