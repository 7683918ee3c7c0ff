"""WebSocket mode of /v1/responses, with a real WebSocket client (the `websockets` package's asyncio client)
against the gateway process on loopback and the fake OpenAI upstream.

What Open Responses (../shared/spec/openresponses.openapi.json, `x-openresponses-websocket`) and OpenAI's
WebSocket mode say: `response.create` messages, the events SSE carries, one response in flight per
connection, `previous_response_id` continuation (a `store: false` turn only on its own connection),
`previous_response_not_found`, a failed continuation dropping the connection's kept turn, errors as
`WebSocketErrorEvent` after which the connection goes on.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.server.conftest import MASTER_KEY, MOCK_TEXT, MODEL, SMALL_BODY_LIMIT
from tests.server.test_sse import TERMINAL, stream_frames
from tests.spec import spec_path
from tests.support.spec import BothSpecs

OPEN_RESPONSES = "urn:open-responses-spec"


class WsSpec:
    """Open Responses' WebSocket schemas (the client message and the error event)."""

    def __init__(self) -> None:
        contents = json.loads(spec_path("openresponses.openapi.json").read_text())
        resource = Resource.from_contents(contents, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(OPEN_RESPONSES, resource)
        self.socket = contents["paths"]["/responses"]["x-openresponses-websocket"]

    def check(self, name: str, instance: Any) -> None:
        schema = {"$ref": f"{OPEN_RESPONSES}#/components/schemas/{name}"}
        problems = [
            e.message for e in Draft202012Validator(schema, registry=self.registry).iter_errors(instance)
        ]
        assert not problems, f"{name}: {problems[:5]} in {instance}"


@pytest.fixture(scope="module")
def ws_spec() -> WsSpec:
    return WsSpec()


@asynccontextmanager
async def socket(
    gw: Any, key: str | None = None, path: str = "/v1/responses"
) -> AsyncIterator[ClientConnection]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with connect(
        f"ws://127.0.0.1:{gw.http_port}{path}", additional_headers=headers, open_timeout=10
    ) as ws:
        yield ws


def create(ws_spec: WsSpec, **body: Any) -> str:
    """A `response.create` message, valid under the spec's client message schema."""
    message = {"type": "response.create", "model": MODEL, "input": "hi", **body}
    ws_spec.check("WebSocketResponseCreateEvent", message)
    return json.dumps(message)


async def recv(ws: ClientConnection) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), 20)
    assert isinstance(raw, str), "events are text messages"
    return json.loads(raw)  # type: ignore[no-any-return]


class Checker:
    """Every message validates: stream events against the Responses spec, errors as WebSocketErrorEvent."""

    def __init__(self, spec: BothSpecs, ws_spec: WsSpec) -> None:
        self.spec, self.ws_spec = spec, ws_spec

    async def turn(self, ws: ClientConnection) -> list[dict[str, Any]]:
        """The messages of one turn, up to its terminal event or its error."""
        events: list[dict[str, Any]] = []
        while True:
            event = await recv(ws)
            events.append(event)
            if event["type"] == "error" and "sequence_number" not in event:
                # The connection's error envelope (a stream's own `error` event, relayed from the
                # upstream mid-stream, is a numbered stream event like any other).
                self.error(event)
                return events
            self.spec.check_event(event)
            if event["type"] in TERMINAL:
                self.spec.check_response(event["response"])
                assert [e["sequence_number"] for e in events] == list(range(len(events)))
                return events

    def error(self, event: dict[str, Any]) -> dict[str, Any]:
        self.ws_spec.check("WebSocketErrorEvent", event)
        return event

    async def expect_error(self, ws: ClientConnection, status: int, code: str) -> dict[str, Any]:
        event = self.error(await recv(ws))
        assert (event["status"], event["error"]["code"]) == (status, code), event
        return event


@pytest.fixture(scope="module")
def both_specs() -> BothSpecs:
    return BothSpecs()


@pytest.fixture
def check(both_specs: BothSpecs, ws_spec: WsSpec) -> Checker:
    return Checker(both_specs, ws_spec)


def completed(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert events[-1]["type"] == "response.completed", events[-1]
    return events[-1]["response"]  # type: ignore[no-any-return]


def text_of(response: dict[str, Any]) -> str:
    return "".join(
        part["text"] for item in response["output"] if item["type"] == "message" for part in item["content"]
    )


# --------------------------------------------------------------------------------------- the spec's shape
def test_the_spec_describes_websocket_mode(ws_spec):
    """The tests check the messages against what the spec names for this socket."""
    assert ws_spec.socket["clientMessage"]["$ref"].endswith("/WebSocketResponseCreateEvent")
    assert ws_spec.socket["errorMessage"]["$ref"].endswith("/WebSocketErrorEvent")


@pytest.mark.parametrize("scenario", ["text", "function_calls", "reasoning", "incomplete"])
async def test_a_turn_streams_the_events_sse_does(gateway, http, fake, check, scenario):
    fake.enqueue(scenario)
    async with socket(gateway) as ws:
        await ws.send(create(check.ws_spec))
        events = await check.turn(ws)
    fake.enqueue(scenario)
    sse = [f.json() for f in stream_frames(http, {"input": "hi"})[:-1]]
    assert [e["type"] for e in events] == [e["type"] for e in sse]
    final = events[-1]["response"]
    assert final["status"] == ("incomplete" if scenario == "incomplete" else "completed")
    assert fake.create_requests[0].body["stream"] is True  # streamed upstream as an SSE turn is
    stored = http.get(f"/v1/responses/{final['id']}")
    assert stored.status_code == 200 and stored.json()["output"] == final["output"]


async def test_the_path_without_v1_and_a_translated_model(gateway, check):
    async with socket(gateway, path="/responses") as ws:
        await ws.send(create(check.ws_spec, model="mock"))
        assert text_of(completed(await check.turn(ws))) == MOCK_TEXT


# --------------------------------------------------------------------------------------- continuation
async def test_sequential_turns_and_a_reconnect_continue_stored_responses(gateway, http, fake, check):
    async with socket(gateway) as ws:
        await ws.send(create(check.ws_spec, input="first"))
        first = completed(await check.turn(ws))
        await ws.send(create(check.ws_spec, input="second", previous_response_id=first["id"]))
        second = completed(await check.turn(ws))
    assert second["previous_response_id"] == first["id"]
    # The upstream keeps state: the stored turn is continued there, by its id.
    assert fake.create_requests[-1].body["previous_response_id"] == first["id"]

    # A new connection recovers what was stored (it kept nothing of the old one).
    async with socket(gateway) as ws:
        await ws.send(create(check.ws_spec, input="third", previous_response_id=second["id"]))
        third = completed(await check.turn(ws))
    assert third["previous_response_id"] == second["id"]
    assert fake.create_requests[-1].body["previous_response_id"] == second["id"]
    assert http.get(f"/v1/responses/{third['id']}").json()["previous_response_id"] == second["id"]


def _texts(items: list[dict[str, Any]]) -> list[str]:
    """The texts of a replayed conversation's messages, in order."""
    out = []
    for item in items:
        content = item["content"]
        out.append(content if isinstance(content, str) else "".join(p["text"] for p in content))
    return out


async def test_store_false_turns_continue_on_their_connection(gateway, http, fake, check):
    async with socket(gateway) as ws:
        await ws.send(create(check.ws_spec, input="first", store=False))
        first = completed(await check.turn(ws))
        await ws.send(create(check.ws_spec, input="second", store=False, previous_response_id=first["id"]))
        second = completed(await check.turn(ws))
        # A chain of kept turns: the connection keeps only the last, which carries the whole conversation.
        await ws.send(create(check.ws_spec, input="third", store=False, previous_response_id=second["id"]))
        third = completed(await check.turn(ws))
    assert http.get(f"/v1/responses/{first['id']}").status_code == 404  # never stored
    assert third["status"] == "completed"
    # No upstream holds a store: false turn, so the gateway replayed the conversation.
    sent = fake.create_requests[-1].body
    assert "previous_response_id" not in sent
    expected = ["first", text_of(first), "second", text_of(second), "third"]
    assert _texts(sent["input"]) == expected


@pytest.mark.parametrize(
    ("model", "code", "says"),
    [
        ("mock", "previous_response_not_found", "not found"),  # the gateway's own answer
        (MODEL, "previous_response_not_found", "not found"),  # the upstream's, relayed
    ],
)
async def test_a_store_false_turn_is_gone_on_a_new_connection(gateway, fake, check, model, code, says):
    async with socket(gateway) as ws:
        await ws.send(create(check.ws_spec, model=model, store=False))
        first = completed(await check.turn(ws))
    async with socket(gateway) as ws:
        await ws.send(create(check.ws_spec, model=model, previous_response_id=first["id"]))
        error = await check.expect_error(ws, 400, code)
        assert error["error"]["param"] == "previous_response_id" and says in error["error"]["message"]
        # The connection goes on: a new chain with the whole context works.
        await ws.send(create(check.ws_spec, model=model))
        completed(await check.turn(ws))


@pytest.mark.parametrize("failure", ["upstream_400", "response_failed", "invalid_request"])
async def test_a_failed_continuation_drops_the_kept_turn(gateway, fake, check, failure):
    async with socket(gateway) as ws:
        await ws.send(create(check.ws_spec, store=False))
        first = completed(await check.turn(ws))
        continuation: dict[str, Any] = {"previous_response_id": first["id"], "store": False}
        if failure == "upstream_400":
            fake.fail_next(400)
        elif failure == "response_failed":
            fake.enqueue("error_event")
        else:
            continuation["temperature"] = "hot"
        await ws.send(json.dumps({"type": "response.create", "model": MODEL, "input": "hi", **continuation}))
        events = await check.turn(ws)
        if failure == "response_failed":
            assert events[-1]["type"] == "response.failed"
        else:
            assert events == [events[-1]] and events[-1]["status"] == 400
        # The kept turn is gone: continuing it again is refused (the upstream never held it either).
        await ws.send(create(check.ws_spec, previous_response_id=first["id"], store=False))
        await check.expect_error(ws, 400, "previous_response_not_found")


# --------------------------------------------------------------------------------------- bad messages
@pytest.mark.parametrize(
    ("message", "code", "param"),
    [
        ("{not json", "invalid_json", None),
        ("[1, 2]", "invalid_json", None),
        ('{"type": "response.cancel"}', "invalid_request", "type"),
        ('{"model": "gpt-4.1", "input": "hi"}', "invalid_request", "type"),
        (
            '{"type": "response.create", "model": "gpt-4.1", "input": "hi", "stream": true}',
            "invalid_request",
            "stream",
        ),
        (
            '{"type": "response.create", "model": "gpt-4.1", "background": true}',
            "invalid_request",
            "background",
        ),
        (
            '{"type": "response.create", "model": "gpt-4.1", "stream_options": {}}',
            "invalid_request",
            "stream_options",
        ),
        ('{"type": "response.create", "input": "hi"}', "invalid_request", "model"),
    ],
)
async def test_a_bad_message_gets_an_error_and_the_connection_goes_on(
    gateway, fake, check, message, code, param
):
    async with socket(gateway) as ws:
        error = await _send_bad(ws, check, message, code)
        assert error["error"]["param"] == param
        assert error["error"]["type"] == "invalid_request_error"
        await ws.send(create(check.ws_spec))
        completed(await check.turn(ws))


async def _send_bad(ws: ClientConnection, check: Checker, message: str, code: str) -> dict[str, Any]:
    await ws.send(message)
    return await check.expect_error(ws, 400, code)


async def test_a_message_that_is_no_create_keeps_the_kept_turn(gateway, check):
    async with socket(gateway) as ws:
        await ws.send(create(check.ws_spec, model="mock", store=False))
        first = completed(await check.turn(ws))
        await _send_bad(ws, check, "{oops", "invalid_json")
        await _send_bad(ws, check, '{"type": "session.update"}', "invalid_request")
        await ws.send(create(check.ws_spec, model="mock", store=False, previous_response_id=first["id"]))
        assert completed(await check.turn(ws))["previous_response_id"] == first["id"]


async def test_a_message_over_the_size_limit(secured, check):
    async with socket(secured, MASTER_KEY) as ws:
        await ws.send(create(check.ws_spec, model="mock", input="x" * (SMALL_BODY_LIMIT + 1)))
        await check.expect_error(ws, 413, "request_too_large")
        await ws.send(create(check.ws_spec, model="mock"))
        completed(await check.turn(ws))


async def test_a_second_create_while_one_is_in_flight(gateway, fake, wire, check):
    fake.event_delay = 0.05  # the first turn streams long enough for the second create to overtake it
    async with socket(gateway) as ws:
        await ws.send(create(check.ws_spec, input="first", store=False))
        assert (await recv(ws))["type"] == "response.created"
        await ws.send(create(check.ws_spec, input="second"))
        events, errors = [], []
        while not events or events[-1]["type"] not in TERMINAL:
            message = await recv(ws)
            (errors if message["type"] == "error" else events).append(message)
        assert [e["error"]["code"] for e in map(check.error, errors)] == ["response_already_in_flight"]
        assert errors[0]["status"] == 400
        # The first turn went on undisturbed, its numbering gapless, and only it reached the upstream.
        assert [e["sequence_number"] for e in events] == list(range(1, len(events) + 1))
        first = completed(events)
        assert len(wire.creates()) == 1
        # ... and what it kept is there for the next turn.
        fake.event_delay = 0.0
        await ws.send(create(check.ws_spec, input="next", store=False, previous_response_id=first["id"]))
        completed(await check.turn(ws))
        assert _texts(fake.create_requests[-1].body["input"]) == ["first", text_of(first), "next"]


async def test_leaving_mid_turn_stops_the_upstream(gateway, fake, wire, check):
    fake.event_delay = 0.2
    async with socket(gateway) as ws:
        await ws.send(create(check.ws_spec))
        assert (await recv(ws))["type"] == "response.created"
    for _ in range(100):
        if wire.creates() and wire.creates()[-1].client_disconnected:
            break
        await asyncio.sleep(0.05)
    assert wire.creates()[-1].client_disconnected and not wire.creates()[-1].completed


# --------------------------------------------------------------------------------------- auth
@pytest.mark.parametrize("key", [None, "sk-wrong-key"])
async def test_the_upgrade_is_refused_without_the_key(secured, key):
    with pytest.raises(InvalidStatus) as refused:
        async with socket(secured, key):
            pass
    response = refused.value.response
    assert response.status_code == 401
    body = json.loads(response.body)
    assert body["error"]["code"] == "invalid_api_key" and body["error"]["type"] == "invalid_request_error"


async def test_the_upgrade_with_the_key(secured, check):
    async with socket(secured, MASTER_KEY) as ws:
        await ws.send(create(check.ws_spec, model="mock"))
        assert text_of(completed(await check.turn(ws))) == MOCK_TEXT


# --------------------------------------------------------------------------------------- the listener's bounds
async def test_an_upgraded_connection_outlives_the_request_timeouts_and_counts_as_a_connection(
    spawn_gateway, check
):
    """The head / body timeouts time the upgrade request only; the connection limit counts open sockets."""
    gw = spawn_gateway(
        grace=1,
        settings={"http": {"header_timeout_seconds": 0.3, "body_timeout_seconds": 0.3, "max_connections": 2}},
    )
    async with socket(gw) as first, socket(gw) as second:
        await asyncio.sleep(1.0)  # past both timeouts: an HTTP request would have been cut by now
        for ws in (first, second):
            await ws.send(create(check.ws_spec, model="mock"))
            assert text_of(completed(await check.turn(ws))) == MOCK_TEXT
        async with httpx.AsyncClient(base_url=gw.http_base, timeout=10) as http:
            busy = await http.get("/healthz")
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "too_many_connections"
    async with httpx.AsyncClient(base_url=gw.http_base, timeout=10) as http:
        for _ in range(50):  # the closed sockets leave the count as the server sees them go
            if (await http.get("/healthz")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert (await http.get("/healthz")).status_code == 200


# --------------------------------------------------------------------------------------- the README
def test_the_readme_example_runs(gateway, capsys):
    """README.md's WebSocket block, as written but for its address."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = [b for b in re.findall(r"^```python\n(.*?)^```", text, re.M | re.S) if "websockets.sync" in b]
    assert len(blocks) == 1
    code = blocks[0].replace("ws://localhost:8080", f"ws://127.0.0.1:{gateway.http_port}")
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == MOCK_TEXT + "\n"
