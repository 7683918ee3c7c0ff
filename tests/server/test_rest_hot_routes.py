"""The hot REST routes (a create, a chat completion, a GET of one response) are answered by
`HotRoutes` in front of Starlette: the same answers, labels and errors as every other route, on the
real gateway and on a bare `HotRoutes` app served by the gateway's own HTTP server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from responses_gateway.config.models import HttpSettings
from responses_gateway.transport.rest.app import HotRoutes, _starlette, route_template
from responses_gateway.transport.rest.errors import internal_error_response
from responses_gateway.transport.rest.server import build_server
from tests.server.test_errors import openai_error
from tests.server.test_metrics import errors, scrape

MOCK = {"model": "mock", "input": "hello"}


# --------------------------------------------------------------------------------------- the gateway
@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_create_then_get_with_and_without_v1(http: httpx.Client, prefix: str) -> None:
    created = http.post(f"{prefix}/responses", json=MOCK)
    assert created.status_code == 200, created.text
    assert created.headers["content-type"] == "application/json"
    assert created.headers["x-request-id"].startswith("req_")
    body = created.json()
    assert body["object"] == "response" and body["status"] == "completed"
    for other in ("/v1", ""):  # stored once, readable under both prefixes
        got = http.get(f"{other}/responses/{body['id']}")
        assert got.status_code == 200, got.text
        assert got.json()["id"] == body["id"] and got.json()["output"] == body["output"]
        assert got.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_chat_completions_with_and_without_v1(http: httpx.Client, prefix: str) -> None:
    r = http.post(
        f"{prefix}/chat/completions",
        json={"model": "mock", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-request-id": "req_hot_chat_1"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["object"] == "chat.completion"
    assert r.headers["x-request-id"] == "req_hot_chat_1"  # the caller's own id, as on every route


def test_routes_beside_the_hot_ones_still_reach_starlette(http: httpx.Client) -> None:
    rid = http.post("/v1/responses", json=MOCK).json()["id"]
    # Deeper paths under the hot prefix: Starlette's routes.
    items = http.get(f"/v1/responses/{rid}/input_items")
    assert items.status_code == 200 and items.json()["object"] == "list"
    # HEAD is Starlette's (it answers a GET route's HEAD without a body).
    head = http.head(f"/v1/responses/{rid}")
    assert head.status_code == 200 and head.content == b""
    # Wrong methods on the hot paths: Starlette's 405, as OpenAI error JSON.
    for method, path in [("GET", "/v1/responses"), ("PUT", "/responses"), ("GET", "/v1/chat/completions")]:
        error = openai_error(http.request(method, path), 405)
        assert error["message"] == f"Invalid URL ({method} {path})"
    assert (
        openai_error(http.get("/v1/responses/a/b/c"), 404)["message"]
        == "Invalid URL (GET /v1/responses/a/b/c)"
    )


def test_responses_do_not_name_the_server_software(http: httpx.Client) -> None:
    for r in (http.post("/v1/responses", json=MOCK), http.get("/healthz"), http.get("/nowhere")):
        assert "server" not in r.headers and r.headers["date"], r.headers


def test_errors_on_hot_routes_are_labelled_with_their_template(http: httpx.Client) -> None:
    paths = ["/v1/responses", "/responses", "/v1/chat/completions", "/chat/completions"]
    _, before = scrape(http)
    for path in paths:
        openai_error(http.post(path, content=b"{not json", headers={"content-type": "application/json"}), 400)
    missing = "resp_" + "0" * 32
    openai_error(http.get(f"/v1/responses/{missing}"), 404)
    _, after = scrape(http)
    for path in paths:
        assert errors(after, path, "INVALID_JSON") == errors(before, path, "INVALID_JSON") + 1, path
    template = "/v1/responses/{response_id}"
    assert errors(after, template, "RESPONSE_NOT_FOUND") == errors(before, template, "RESPONSE_NOT_FOUND") + 1


# --------------------------------------------------------------------------------------- bare HotRoutes
class _CutShort(Response):
    """Starts a response, sends part of it, then fails."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("failed mid-response")


async def _raises(request: Request) -> Response:
    raise RuntimeError("escaped the handler")


async def _cut(request: Request) -> Response:
    return _CutShort()


async def _echo(request: Request) -> Response:
    return JSONResponse(
        {
            "template": route_template(request),
            "params": request.path_params,
            "endpoint": request.scope["endpoint"].__name__,
            "body": (await request.body()).decode(),
        }
    )


@pytest.fixture(scope="module")
def bare() -> Iterator[str]:
    """A HotRoutes app over a few routes of its own, on uvicorn as the gateway configures it."""
    routes = [
        Route("/v1/responses", _raises, methods=["POST"]),
        Route("/responses", _cut, methods=["POST"]),
        Route("/v1/responses/{response_id}", _echo, methods=["GET"]),
        Route("/v1/chat/completions", _echo, methods=["POST"]),
    ]
    server = build_server(HotRoutes(_starlette(routes)), "127.0.0.1", 0, HttpSettings(), 1.0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(server.serving, 10), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_an_exception_escaping_a_hot_endpoint_is_a_500_error_json(bare: str) -> None:
    with httpx.Client(base_url=bare, timeout=10) as http:
        for _ in range(3):  # answered whole each time, on a connection that stays usable
            hot = http.post("/v1/responses", json={"a": "b" * 10_000})
            assert openai_error(hot, 500)["type"] == "server_error"
            assert hot.content == internal_error_response().body  # what `_unexpected` answers
        assert http.get("/v1/responses/resp_1").status_code == 200


def test_a_response_failing_midway_is_cut_not_completed(bare: str) -> None:
    # 7 of 100 bytes, then the connection closes: the client reads a short body (RemoteProtocolError),
    # or, when the close overtakes the request's last bytes on the server, a reset (ReadError).
    cut = (httpx.RemoteProtocolError, httpx.ReadError)
    with httpx.Client(base_url=bare, timeout=10) as http, pytest.raises(cut):
        http.post("/responses", json={})


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        (
            "GET",
            "/v1/responses/resp_abc",
            {"template": "/v1/responses/{response_id}", "params": {"response_id": "resp_abc"}},
        ),
        (
            "GET",
            "/v1/responses/compact",
            {"template": "/v1/responses/{response_id}", "params": {"response_id": "compact"}},
        ),
        ("POST", "/v1/chat/completions", {"template": "/v1/chat/completions", "params": {}}),
    ],
)
def test_hot_dispatch_sets_what_starlette_would(
    bare: str, method: str, path: str, expected: dict[str, Any]
) -> None:
    with httpx.Client(base_url=bare, timeout=10) as http:
        r = http.request(method, path, content=b"the body" if method == "POST" else None)
    assert r.status_code == 200, r.text
    assert r.json() == {**expected, "endpoint": "_echo", "body": "the body" if method == "POST" else ""}


def test_paths_the_hot_table_does_not_serve_fall_through(bare: str) -> None:
    with httpx.Client(base_url=bare, timeout=10) as http:
        missing = openai_error(http.get("/responses/resp_abc"), 404)  # no such route in this app
        assert missing["message"] == "Invalid URL (GET /responses/resp_abc)"
        assert openai_error(http.post("/v1/responses/resp_abc"), 405)
        assert openai_error(http.get("/v1/responses/resp_abc/x"), 404)


def test_response_headers_keep_their_order(http: httpx.Client) -> None:
    """The header list a JSON response has always had: length, type, the call's notes, request id."""
    notes = [b"x-gateway-cost", b"x-gateway-deployment", b"x-gateway-model", b"x-gateway-attempts"]
    created = http.post("/v1/responses", json=MOCK)
    chat = http.post(
        "/chat/completions", json={"model": "mock", "messages": [{"role": "user", "content": "x"}]}
    )
    got = http.get(f"/responses/{created.json()['id']}")
    for r, middle in [(created, notes), (chat, notes), (got, [])]:
        assert r.status_code == 200, r.text
        keys = [k for k, _ in r.headers.raw if k not in (b"date", b"server")]
        assert keys == [b"content-length", b"content-type", *middle, b"x-request-id"], keys
        assert r.headers["content-length"] == str(len(r.content))
        assert r.headers["content-type"] == "application/json"


def test_sse_frames_are_exactly_openais_framing(http: httpx.Client) -> None:
    """Byte for byte: `event: <type>` then one `data:` line of the event's JSON, a blank line, and
    `data: [DONE]` at the end; Chat Completions' chunks are `data:` lines alone."""
    with http.stream("POST", "/v1/responses", json={**MOCK, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        raw = r.read()
    frames = raw.split(b"\n\n")
    assert frames[-2:] == [b"data: [DONE]", b""], raw[-200:]
    numbers = []
    for chunk in frames[:-2]:
        event_line, data_line = chunk.split(b"\n")  # exactly two lines per frame
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: "), chunk
        event = json.loads(data_line.removeprefix(b"data: "))
        assert event_line == b"event: " + event["type"].encode()
        numbers.append(event["sequence_number"])
    assert numbers == list(range(len(numbers))) and len(numbers) >= 3

    chat = {"model": "mock", "messages": [{"role": "user", "content": "x"}], "stream": True}
    with http.stream("POST", "/chat/completions", json=chat) as r:
        raw = r.read()
    frames = raw.split(b"\n\n")
    assert frames[-2:] == [b"data: [DONE]", b""], raw[-200:]
    chunks = [
        json.loads(f.removeprefix(b"data: "))
        for f in frames[:-2]
        if f.startswith(b"data: ") and b"\n" not in f
    ]
    assert len(chunks) == len(frames) - 2 >= 2  # every frame one data line
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
