"""The response run, driven through the real gateway (REST) with scripted providers behind a real
config: numbering across turns, the gateway's own items between turns, no retry once a byte reached
the client, and create-then-cancel that leaves one story in GET, the event log and the store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from responses_gateway import codec
from responses_gateway.domain.run import Continuation, ResponseRun
from responses_gateway.errors import Reason
from responses_gateway.v1 import items_pb2, request_pb2, response_pb2
from tests.support.inprocess import InProcessGateway
from tests.support.scripted import (
    NativeScriptedProvider,
    ScriptedProvider,
    openai_script,
    refused,
    text_script,
)
from tests.support.sse import sse_events

TERMINAL = ("response.completed", "response.incomplete", "response.failed")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    tmp = tmp_path_factory.mktemp("run")
    # The deployments are mock ones so they need no key; the scripted providers replace them.
    models = [
        {
            "model_name": name,
            "litellm_params": {"model": "openai/x", "mock_response": "unused"},
            "model_info": {"id": name},
        }
        for name in ("scripted", "native")
    ]
    config = {
        "model_list": models,
        "router_settings": {"num_retries": 2},
        "gateway_settings": {"store": {"type": "sqlite", "path": str(tmp / "r.db")}},
    }
    (tmp / "gateway.json").write_text(json.dumps(config))
    gw = InProcessGateway(tmp / "gateway.json", grace_seconds=1)
    try:
        yield gw
    finally:
        gw.close()


@pytest.fixture
def scripted(gateway: InProcessGateway) -> Iterator[ScriptedProvider]:
    provider = ScriptedProvider()
    gateway.gw.providers.install("scripted", provider)
    yield provider
    gateway.gw.service.deps.hook = None


@pytest.fixture
def native(gateway: InProcessGateway) -> Iterator[NativeScriptedProvider]:
    provider = NativeScriptedProvider()
    gateway.gw.providers.install("native", provider)
    yield provider
    gateway.gw.service.deps.hook = None


@pytest.fixture
def http(gateway: InProcessGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{gateway.http_base}/v1", timeout=30) as c:
        yield c


def stream(http: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    with http.stream("POST", "/responses", json={"input": "hi", "stream": True, **body}) as r:
        assert r.status_code == 200, r.read()
        return sse_events(r)


def check_numbering(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Gapless sequence numbers from 0, one created, one terminal at the end, one response id."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    types = [e["type"] for e in events]
    assert types.count("response.created") == 1 and types[-1] in TERMINAL
    assert not any(t in TERMINAL for t in types[:-1])
    ids = {e["response"]["id"] for e in events if "response" in e}
    assert len(ids) == 1, ids
    return events[-1]["response"]


# --------------------------------------------------------------------------------- retries
def test_a_failure_before_the_first_event_is_retried(http: httpx.Client, scripted: ScriptedProvider) -> None:
    scripted.play(refused(Reason.UPSTREAM_UNAVAILABLE), text_script(["Hi"]))
    final = check_numbering(stream(http, model="scripted"))
    assert final["status"] == "completed" and len(scripted.calls) == 2


def test_no_retry_once_a_byte_reached_the_client(http: httpx.Client, scripted: ScriptedProvider) -> None:
    scripted.play(text_script(["a", "b", "c"], fail_after=2), text_script(["never"]))
    events = stream(http, model="scripted")
    final = check_numbering(events)
    assert final["status"] == "failed" and "broke off" in final["error"]["message"]
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "ab"
    assert len(scripted.calls) == 1
    stored = http.get(f"/responses/{final['id']}").json()
    assert stored["status"] == "failed" and stored["output"][0]["content"][0]["text"] == "ab"


# --------------------------------------------------------------------------------- several turns
class TwoTurns:
    """After the first turn, add a message of the gateway's own and ask the model once more."""

    def __init__(self, fail_next: bool = False) -> None:
        self.turns = 0
        self.fail_next = fail_next

    async def after_turn(self, run: ResponseRun, response: response_pb2.Response) -> Continuation | None:
        self.turns += 1
        if self.turns > 1:
            return None
        note = items_pb2.Item()
        note.message.id = "msg_gateway_note"
        note.message.role = items_pb2.MESSAGE_ROLE_ASSISTANT
        note.message.status = items_pb2.ITEM_STATUS_COMPLETED
        note.message.content.parts.parts.add().output_text.text = "(the gateway looked something up)"
        nxt = request_pb2.CreateResponseRequest()
        nxt.CopyFrom(run.plan.request)
        nxt.ClearField("input")
        nxt.input.items.items.extend([*run.plan.items, *response.output, note])
        return Continuation(items=[note], request=nxt)


@pytest.mark.parametrize("kind", ["translated", "native"])
def test_one_response_spans_two_upstream_turns(
    gateway: InProcessGateway,
    http: httpx.Client,
    scripted: ScriptedProvider,
    native: NativeScriptedProvider,
    kind: str,
) -> None:
    provider: ScriptedProvider = scripted if kind == "translated" else native
    if kind == "translated":
        provider.play(text_script(["first"], input_tokens=5), text_script(["second"], input_tokens=7))
    else:
        provider.play(openai_script(), openai_script())
    hook = TwoTurns()
    gateway.gw.service.deps.hook = hook
    events = stream(http, model="scripted" if kind == "translated" else "native")
    final = check_numbering(events)
    assert len(provider.calls) == 2 and hook.turns == 2
    # The second call carried the first turn's output and the gateway's item.
    second_input = provider.calls[1].request.input.items.items
    assert [i.message.id for i in second_input][-1] == "msg_gateway_note"
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [e["output_index"] for e in added] == [0, 1, 2]
    assert added[1]["item"]["id"] == "msg_gateway_note"
    indices = {e["output_index"] for e in events if e["type"] == "response.output_text.delta"}
    assert indices == {0, 2}
    assert [i["id"] for i in final["output"]][1] == "msg_gateway_note" and len(final["output"]) == 3
    if kind == "translated":
        assert final["usage"]["input_tokens"] == 12  # both turns'
    stored = http.get(f"/responses/{final['id']}").json()
    assert stored == final


def test_a_later_turn_that_cannot_open_fails_the_stream_cleanly(
    gateway: InProcessGateway, http: httpx.Client, scripted: ScriptedProvider
) -> None:
    scripted.play(text_script(["first"]), refused(Reason.INVALID_REQUEST, "turn two refused"))
    gateway.gw.service.deps.hook = TwoTurns()
    events = stream(http, model="scripted")
    final = check_numbering(events)
    assert final["status"] == "failed" and final["error"]["message"] == "turn two refused"
    assert [i["id"] for i in final["output"]][-1] == "msg_gateway_note"
    assert http.get(f"/responses/{final['id']}").json()["status"] == "failed"


# --------------------------------------------------------------------------------- cancel
def _events_of(http: httpx.Client, rid: str) -> list[dict[str, Any]]:
    with http.stream("GET", f"/responses/{rid}", params={"stream": "true"}) as r:
        assert r.status_code == 200
        return sse_events(r)


@pytest.mark.parametrize("when", ["before-output", "during-output", "after-the-end"])
def test_create_then_cancel_tells_one_story(
    gateway: InProcessGateway, http: httpx.Client, scripted: ScriptedProvider, when: str
) -> None:
    """Cancel right after create (the upstream has sent only `created`), after some output, or after
    the end: the cancel's answer, GET, the replayed event log and the store agree, every time."""
    words = ["w"] * 20
    for n in range(50 // 3 + 1):
        if when == "before-output":
            scripted.play(text_script(words, pause=0.02))
        elif when == "during-output":
            scripted.play(text_script(words, pause=0.01))
        else:
            scripted.play(text_script(words[:2]))
        created = http.post("/responses", json={"model": "scripted", "input": "hi", "background": True})
        assert created.status_code == 200, created.text
        rid = created.json()["id"]
        if when == "during-output":
            time.sleep(0.05)
        elif when == "after-the-end":
            deadline = time.monotonic() + 10
            while http.get(f"/responses/{rid}").json()["status"] == "in_progress":
                assert time.monotonic() < deadline
                time.sleep(0.01)
        answer = http.post(f"/responses/{rid}/cancel")
        assert answer.status_code == 200, answer.text
        status = answer.json()["status"]
        assert status == ("completed" if when == "after-the-end" else "cancelled"), (n, status)
        got = http.get(f"/responses/{rid}").json()
        assert got["status"] == status and got["output"] == answer.json()["output"]
        stored = gateway.run(gateway.gw.store.get(rid)).response
        assert codec.to_json(stored)["status"] == status
        log = _events_of(http, rid)
        assert [e["sequence_number"] for e in log] == list(range(len(log)))
        terminal = [e for e in log if e["type"] in TERMINAL]
        if status == "cancelled":
            assert terminal == []  # the log never claims an ending it did not have
        else:
            assert [e["response"]["status"] for e in terminal] == ["completed"]
        time.sleep(0.01)
        assert http.get(f"/responses/{rid}").json()["status"] == status  # and it stays so
