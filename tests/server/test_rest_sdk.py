"""The official `openai` SDK (strict response validation) against the REST shim of a gateway subprocess."""

from __future__ import annotations

import json
import time

import openai
import pytest

from tests.server.conftest import MODEL, sdk

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather at a place",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    }
]


def test_create_non_streaming(client, fake):
    r = client.responses.create(model=MODEL, input="Say hello", instructions="Be brief", temperature=0.5)
    assert r.object == "response"
    assert r.status == "completed"
    assert r.id.startswith("resp_")
    assert r.output_text == "Hello! How can I help you today?"
    assert r.model == "gpt-4.1-2025-04-14"  # the upstream's snapshot, passed through
    assert r.usage is not None and r.usage.total_tokens > 0
    sent = fake.create_requests[-1].body
    assert sent["input"] == "Say hello"
    assert sent["instructions"] == "Be brief"
    assert sent["temperature"] == 0.5
    assert sent["model"] == MODEL
    assert "stream" not in sent or sent["stream"] is False


def test_create_stream_true_collects_events(client, fake):
    stream = client.responses.create(model=MODEL, input="hi", stream=True)
    events = list(stream)
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello! How can I help you today?"
    assert events[-1].response.output_text == text
    assert fake.create_requests[-1].body["stream"] is True


def test_stream_helper_final_response(client, fake):
    with client.responses.stream(model=MODEL, input="hi") as stream:
        seen = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.output_text.delta" in seen
    assert final.status == "completed"
    assert final.output_text == "Hello! How can I help you today?"
    # The stored copy is what the stream ended with.
    again = client.responses.retrieve(final.id)
    assert again.id == final.id
    assert again.status == "completed"
    assert again.output_text == final.output_text


def test_retrieve_then_delete(client, fake):
    r = client.responses.create(model=MODEL, input="hi")
    got = client.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == r.output_text
    assert client.responses.delete(r.id) is None
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.retrieve(r.id)
    assert err.value.status_code == 404
    body = err.value.body
    assert isinstance(body, dict) and r.id in body["message"]
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)


def test_input_items_pagination(client, fake):
    words = ["one", "two", "three", "four", "five"]
    r = client.responses.create(model=MODEL, input=[{"role": "user", "content": w} for w in words])
    asc = client.responses.input_items.list(r.id, order="asc")
    assert [i.content[0].text for i in asc.data] == words
    ids = [i.id for i in asc.data]
    assert len(set(ids)) == 5 and all(ids)
    assert asc.first_id == ids[0] and asc.last_id == ids[-1] and asc.has_more is False

    desc = client.responses.input_items.list(r.id, order="desc")
    assert [i.id for i in desc.data] == ids[::-1]
    default = client.responses.input_items.list(r.id)
    assert [i.id for i in default.data] == ids[::-1]  # OpenAI's default order is desc

    page = client.responses.input_items.list(r.id, order="asc", limit=2)
    assert [i.id for i in page.data] == ids[:2] and page.has_more is True
    page2 = client.responses.input_items.list(r.id, order="asc", limit=2, after=page.last_id)
    assert [i.id for i in page2.data] == ids[2:4] and page2.has_more is True
    rest = client.responses.input_items.list(r.id, order="desc", after=ids[2])
    assert [i.id for i in rest.data] == ids[1::-1] and rest.has_more is False
    # The SDK's auto-pagination walks every page.
    assert [i.id for i in client.responses.input_items.list(r.id, order="asc", limit=2)] == ids


def test_input_items_of_unknown_response(client, fake):
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list("resp_doesnotexist")


def test_function_calls(client, fake):
    fake.enqueue("function_calls")
    r = client.responses.create(model=MODEL, input="Weather in Paris and Tokyo?", tools=TOOLS)
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 2
    assert [json.loads(c.arguments) for c in calls] == [
        {"location": "Paris, France"},
        {"location": "Tokyo, Japan"},
    ]
    assert {c.name for c in calls} == {"get_weather"}
    assert all(c.call_id.startswith("call_") for c in calls)
    assert fake.create_requests[-1].body["tools"][0]["name"] == "get_weather"
    assert r.tools[0].name == "get_weather"

    fake.enqueue("function_calls")
    with client.responses.stream(model=MODEL, input="Weather?", tools=TOOLS) as stream:
        done_args = [e.arguments for e in stream if e.type == "response.function_call_arguments.done"]
        final = stream.get_final_response()
    assert [json.loads(a) for a in done_args] == [{"location": "Paris, France"}, {"location": "Tokyo, Japan"}]
    assert [o.type for o in final.output] == ["function_call", "function_call"]


def test_reasoning(client, fake):
    fake.enqueue("reasoning")
    r = client.responses.create(
        model=MODEL,
        input="Think",
        reasoning={"effort": "low", "summary": "auto"},
        include=["reasoning.encrypted_content"],
    )
    kinds = [o.type for o in r.output]
    assert kinds[0] == "reasoning" and "message" in kinds
    assert r.output[0].encrypted_content
    assert r.reasoning is not None and r.reasoning.effort == "low"
    assert r.usage.output_tokens_details.reasoning_tokens > 0
    sent = fake.create_requests[-1].body
    assert sent["reasoning"] == {"effort": "low", "summary": "auto"}
    assert sent["include"] == ["reasoning.encrypted_content"]


def test_refusal(client, fake):
    fake.enqueue("refusal")
    with client.responses.stream(model=MODEL, input="Something bad") as stream:
        deltas = [e.delta for e in stream if e.type == "response.refusal.delta"]
        final = stream.get_final_response()
    part = final.output[0].content[0]
    assert part.type == "refusal"
    assert part.refusal == "".join(deltas) == "I'm sorry, I can't assist with that."


def test_incomplete(client, fake):
    fake.enqueue("incomplete")
    r = client.responses.create(model=MODEL, input="Write an essay", max_output_tokens=16)
    assert r.status == "incomplete"
    assert r.incomplete_details is not None and r.incomplete_details.reason == "max_output_tokens"
    assert fake.create_requests[-1].body["max_output_tokens"] == 16

    fake.enqueue("incomplete")
    events = list(
        client.responses.create(model=MODEL, input="Write an essay", max_output_tokens=16, stream=True)
    )
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
    stored = client.responses.retrieve(events[-1].response.id)
    assert stored.status == "incomplete" and stored.incomplete_details.reason == "max_output_tokens"


def test_previous_response_id_passes_through(client, fake):
    first = client.responses.create(model=MODEL, input="My name is Ada.")
    second = client.responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id)
    sent = fake.create_requests[-1].body
    # The same upstream keeps state: the id goes upstream as is, the history is not replayed.
    assert sent["previous_response_id"] == first.id
    assert sent["input"] == "What is my name?"
    assert second.previous_response_id == first.id
    # Streaming takes the same path.
    list(client.responses.create(model=MODEL, input="again", previous_response_id=second.id, stream=True))
    assert fake.create_requests[-1].body["previous_response_id"] == second.id


def test_store_false_is_not_kept(client, fake):
    r = client.responses.create(model=MODEL, input="secret", store=False)
    assert r.status == "completed" and r.store is False
    assert fake.create_requests[-1].body["store"] is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    events = list(client.responses.create(model=MODEL, input="secret", store=False, stream=True))
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(events[-1].response.id)


def test_background_create_retrieve_cancel(client, fake):
    fake.event_delay = 0.3  # ~5 s upstream: the cancel comes long before the end
    r = client.responses.create(model=MODEL, input="long job", background=True)
    assert r.background is True
    assert r.status in ("queued", "in_progress")
    # The gateway runs background responses itself: the upstream gets a plain streamed call.
    sent = fake.create_requests[-1].body
    assert sent["stream"] is True and "background" not in sent
    running = client.responses.retrieve(r.id)
    assert running.id == r.id and running.status in ("queued", "in_progress")
    cancelled = client.responses.cancel(r.id)
    assert cancelled.id == r.id and cancelled.status == "cancelled"
    assert client.responses.retrieve(r.id).status == "cancelled"


def test_background_runs_to_completion(client, fake):
    r = client.responses.create(model=MODEL, input="short job", background=True)
    deadline = time.monotonic() + 20
    while (got := client.responses.retrieve(r.id)).status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, "the background response never finished"
        time.sleep(0.05)
    assert got.status == "completed" and got.background is True
    assert got.output_text == "Hello! How can I help you today?"
    # A finished background response can be streamed again from its event log.
    replay = list(client.responses.retrieve(r.id, stream=True))
    assert replay[-1].type == "response.completed"
    assert [e.sequence_number for e in replay] == list(range(len(replay)))
    tail = list(client.responses.retrieve(r.id, stream=True, starting_after=replay[-3].sequence_number))
    assert [e.sequence_number for e in tail] == [e.sequence_number for e in replay[-2:]]


def test_cancel_of_a_foreground_response_is_refused(client, fake):
    r = client.responses.create(model=MODEL, input="hi")
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(r.id)


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_paths_with_and_without_v1(gateway, fake, prefix):
    with sdk(gateway.http_base + prefix) as c:
        r = c.responses.create(model=MODEL, input="hi")
        assert c.responses.retrieve(r.id).id == r.id
        assert [i.type for i in c.responses.input_items.list(r.id).data] == ["message"]
        events = list(c.responses.create(model=MODEL, input="hi", stream=True))
        assert events[-1].type == "response.completed"
        assert c.models.list().data[0].id == MODEL
        c.responses.delete(r.id)


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert ids == [MODEL, "mock"]


def test_mock_model_needs_no_upstream(client, fake):
    r = client.responses.create(model="mock", input="hi")
    assert r.output_text == "Hello from the end-to-end mock model."
    assert fake.create_requests == []


def test_responses_stored_upstream_are_readable_through_the_gateway(client, fake, stub):
    """A response created at the upstream directly (not through the gateway) is not in the gateway's
    store; retrieve, input_items and delete fall through to the upstream that keeps it."""
    from responses_gateway.v1 import responses_service_pb2 as rs

    direct = sdk(fake.api_base, api_key=fake.api_key)
    created = direct.responses.create(model=MODEL, input="Made upstream")
    got = client.responses.retrieve(created.id)
    assert got.id == created.id and got.output_text == created.output_text
    over_grpc = stub.GetResponse(rs.GetResponseRequest(response_id=created.id))
    assert over_grpc.id == created.id
    items = client.responses.input_items.list(created.id)
    assert [i.type for i in items.data] == ["message"]
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        direct.responses.retrieve(created.id)  # gone at the upstream too
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_input_items_before_cursor_and_unknown_cursors(client, http, fake):
    words = ["one", "two", "three", "four", "five"]
    r = client.responses.create(model=MODEL, input=[{"role": "user", "content": w} for w in words])
    ids = [i.id for i in client.responses.input_items.list(r.id, order="asc").data]
    before = client.responses.input_items.list(r.id, order="asc", extra_query={"before": ids[3]})
    assert [i.id for i in before.data] == ids[:3] and before.has_more is False
    window = client.responses.input_items.list(
        r.id, order="desc", after=ids[4], extra_query={"before": ids[0]}
    )
    assert [i.id for i in window.data] == ids[3:0:-1]
    assert window.first_id == ids[3] and window.last_id == ids[1]
    # The auto-paginating iterator walks every page with `after`.
    assert [i.id for i in client.responses.input_items.list(r.id, order="asc", limit=2)] == ids
    for param in ("after", "before"):
        err = http.get(f"/v1/responses/{r.id}/input_items", params={param: "msg_not_in_it"})
        assert err.status_code == 400, err.text
        assert err.json()["error"]["param"] == param
        assert "msg_not_in_it" in err.json()["error"]["message"]
