"""The Python client (`responses_gateway.client`) against a real gateway process and the fake OpenAI upstream.

The gateway runs as a subprocess (`python -m responses_gateway.cli serve`, ports picked by the OS) with one
model, `gpt-4.1`, served by `tests/fakes/openai_upstream.py`, and `master_key: sk-gw`.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from responses_gateway.client import (
    AsyncResponsesClient,
    AuthenticationError,
    DeadlineExceededError,
    NotFoundError,
    RateLimitError,
    RequestCancelledError,
    ResponsesClient,
    UnavailableError,
    output_text,
)
from responses_gateway.v1 import content_pb2, items_pb2, request_pb2, response_pb2
from tests.fakes.openai_upstream import FakeOpenAI, serve_openai
from tests.support.process import run_gateway as run_gateway_process

ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = "sk-gw"
UPSTREAM_KEY = "sk-fake-upstream-key-000000000000"
TEXT = "Hello! How can I help you today?"  # the `text` transcript's output
TEXT_EVENTS = [
    "response_created",
    "response_in_progress",
    "response_output_item_added",
    "response_content_part_added",
    *["response_output_text_delta"] * 9,
    "response_output_text_done",
    "response_content_part_done",
    "response_output_item_done",
    "response_completed",
]


# ------------------------------------------------------------------------------------------ the gateway
@dataclass
class Gateway:
    target: str
    fake: FakeOpenAI
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)


def write_config(path: Path, api_base: str) -> None:
    path.write_text(
        "model_list:\n"
        "  - model_name: gpt-4.1\n"
        f"    litellm_params: {{model: openai/gpt-4.1, api_base: '{api_base}', api_key: '{UPSTREAM_KEY}'}}\n"
        f"general_settings: {{master_key: {MASTER_KEY}}}\n"
        f"gateway_settings: {{store: {{path: '{path.parent / 'db.sqlite'}'}}}}\n"
    )


@contextlib.contextmanager
def run_gateway(config: Path, fake: FakeOpenAI) -> Iterator[Gateway]:
    with run_gateway_process(config) as running:
        yield Gateway(running.target, fake, running.process, running.output)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = tmp_path_factory.mktemp("gateway") / "gateway.yaml"
    with serve_openai(api_key=UPSTREAM_KEY) as fake:
        write_config(config, fake.api_base)
        with run_gateway(config, fake) as gw:
            yield gw


@pytest.fixture(autouse=True)
def _fresh_fake(gateway: Gateway) -> Iterator[None]:
    gateway.fake.reset()
    gateway.fake.scenario = "text"
    gateway.fake.event_delay = 0.0
    yield
    gateway.fake.event_delay = 0.0


@pytest.fixture
def client(gateway: Gateway) -> Iterator[ResponsesClient]:
    with ResponsesClient(gateway.target, api_key=MASTER_KEY, timeout=30) as c:
        yield c


def user_message(text: str) -> items_pb2.Item:
    return items_pb2.Item(
        message=items_pb2.Message(role=items_pb2.MESSAGE_ROLE_USER, content=content_pb2.Content(text=text))
    )


def input_text(item: items_pb2.Item) -> str:
    content = item.message.content
    if content.WhichOneof("kind") == "text":
        return content.text
    return "".join(p.input_text.text for p in content.parts.parts)


# ----------------------------------------------------------------------------------------------- sync
def test_create_retrieve_input_items_delete(client: ResponsesClient) -> None:
    response = client.create(model="gpt-4.1", input="Say hi")
    assert response.id.startswith("resp_")
    assert response.status == response_pb2.RESPONSE_STATUS_COMPLETED
    assert output_text(response) == TEXT

    got = client.retrieve(response.id)
    assert got.id == response.id and output_text(got) == TEXT

    page = client.input_items(response.id, order="asc", limit=10)
    assert [input_text(i) for i in page.data] == ["Say hi"]
    assert [input_text(i) for i in client.iter_input_items(response.id, limit=1)] == ["Say hi"]

    deleted = client.delete(response.id)
    assert deleted.deleted and deleted.id == response.id
    with pytest.raises(NotFoundError) as err:
        client.retrieve(response.id)
    assert err.value.code == grpc.StatusCode.NOT_FOUND and err.value.reason == "RESPONSE_NOT_FOUND"


def test_create_from_request_message_and_items(client: ResponsesClient) -> None:
    request = request_pb2.CreateResponseRequest(
        model="gpt-4.1", input=request_pb2.Input(items=items_pb2.ItemList(items=[user_message("one")]))
    )
    assert output_text(client.create(request)) == TEXT
    response = client.create(model="gpt-4.1", input=[user_message("two"), user_message("three")])
    assert [input_text(i) for i in client.iter_input_items(response.id, limit=1, order="asc")] == [
        "two",
        "three",
    ]
    with pytest.raises(TypeError):
        client.create(request, model="gpt-4.1")


def test_stream_events_final_response_and_text(client: ResponsesClient) -> None:
    with client.stream(model="gpt-4.1", input="Say hi") as stream:
        events = list(stream)
        final = stream.final_response()
    assert [e.WhichOneof("kind") for e in events] == TEXT_EVENTS
    sequence = [e.sequence_number for e in events]
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
    deltas = "".join(
        e.response_output_text_delta.delta for e in events if e.HasField("response_output_text_delta")
    )
    assert deltas == TEXT
    assert final.status == response_pb2.RESPONSE_STATUS_COMPLETED and output_text(final) == TEXT
    assert client.retrieve(final.id).id == final.id

    stream = client.stream(model="gpt-4.1", input="Say hi")
    assert "".join(stream.text_deltas()) == TEXT
    assert output_text(stream.get_final_response()) == TEXT


def test_cancel_stream_midway(gateway: Gateway, client: ResponsesClient) -> None:
    gateway.fake.event_delay = 0.2
    stream = client.stream(model="gpt-4.1", input="Say hi")
    seen = []
    for event in stream:
        seen.append(event.WhichOneof("kind"))
        if len(seen) == 2:
            stream.cancel()
    assert seen == TEXT_EVENTS[:2]
    with pytest.raises(RequestCancelledError):
        stream.final_response()
    # The client and the gateway are fine afterwards.
    gateway.fake.event_delay = 0.0
    assert output_text(client.create(model="gpt-4.1", input="again")) == TEXT


def test_background_replay_and_cancel(client: ResponsesClient) -> None:
    background = client.create(model="gpt-4.1", input="Say hi", background=True)
    replay = client.stream_retrieve(background.id, starting_after=0)
    events = list(replay)
    assert events and all(e.sequence_number > 0 for e in events)
    assert events[-1].WhichOneof("kind") == "response_completed"
    assert output_text(replay.final_response()) == TEXT
    assert client.cancel(background.id).id == background.id


def test_deadline(gateway: Gateway, client: ResponsesClient) -> None:
    gateway.fake.event_delay = 0.5
    with pytest.raises(DeadlineExceededError) as err:
        list(client.stream(model="gpt-4.1", input="Say hi", timeout=0.3))
    assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_list_models_count_tokens_compact(client: ResponsesClient) -> None:
    models = client.list_models()
    assert "gpt-4.1" in [m.id for m in models.data]
    assert client.count_input_tokens(model="gpt-4.1", input="Say hi").input_tokens > 0
    compacted = client.compact(model="gpt-4.1", input="Say hi")
    assert compacted.object == "response.compaction"


def test_unauthenticated(gateway: Gateway) -> None:
    for key in (None, "sk-wrong"):
        with ResponsesClient(gateway.target, api_key=key) as anonymous:
            with pytest.raises(AuthenticationError) as err:
                anonymous.create(model="gpt-4.1", input="Say hi")
            assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
            assert err.value.reason == "UNAUTHENTICATED"
            assert err.value.domain == "responses-gateway"
            with pytest.raises(AuthenticationError):
                list(anonymous.stream(model="gpt-4.1", input="Say hi"))
            with pytest.raises(AuthenticationError):
                anonymous.list_models()


def test_unknown_model(client: ResponsesClient) -> None:
    with pytest.raises(NotFoundError) as err:
        client.create(model="no-such-model", input="Say hi")
    assert err.value.reason == "MODEL_NOT_FOUND"
    assert err.value.param == "model"
    assert err.value.code == grpc.StatusCode.NOT_FOUND


def test_upstream_rate_limit(gateway: Gateway, client: ResponsesClient) -> None:
    gateway.fake.enqueue("error-429")
    with pytest.raises(RateLimitError) as err:
        client.create(model="gpt-4.1", input="Say hi")
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.value.reason == "RATE_LIMITED"
    assert err.value.retry_after == 1.0
    assert "Rate limit reached" in err.value.message

    gateway.fake.enqueue("error-429")
    with pytest.raises(RateLimitError) as stream_err:
        list(client.stream(model="gpt-4.1", input="Say hi"))
    assert stream_err.value.retry_after == 1.0


def test_own_channel_and_unreachable_gateway(gateway: Gateway) -> None:
    channel = grpc.insecure_channel(gateway.target)
    with ResponsesClient(channel=channel, api_key=MASTER_KEY) as c:
        assert c.list_models().data
    channel.close()  # the client leaves a channel it was given open
    with ResponsesClient("127.0.0.1:1", timeout=2) as c, pytest.raises(UnavailableError) as err:
        c.list_models()
    assert err.value.reason is None and err.value.code == grpc.StatusCode.UNAVAILABLE


# ---------------------------------------------------------------------------------------------- async
async def test_async_create_stream_retrieve_delete(gateway: Gateway) -> None:
    async with AsyncResponsesClient(gateway.target, api_key=MASTER_KEY, timeout=30) as client:
        response = await client.create(model="gpt-4.1", input="Say hi")
        assert output_text(response) == TEXT
        assert (await client.retrieve(response.id)).id == response.id

        page = await client.input_items(response.id)
        assert [input_text(i) for i in page.data] == ["Say hi"]
        assert [input_text(i) async for i in client.iter_input_items(response.id, limit=1)] == ["Say hi"]

        async with client.stream(model="gpt-4.1", input="Say hi") as stream:
            events = [e async for e in stream]
            final = await stream.final_response()
        assert [e.WhichOneof("kind") for e in events] == TEXT_EVENTS
        assert output_text(final) == TEXT

        stream = client.stream(model="gpt-4.1", input="Say hi")
        assert "".join([d async for d in stream.text_deltas()]) == TEXT
        assert (await stream.get_final_response()).id

        assert (await client.delete(response.id)).deleted
        with pytest.raises(NotFoundError):
            await client.retrieve(response.id)

        models = await client.list_models()
        assert "gpt-4.1" in [m.id for m in models.data]
        assert (await client.count_input_tokens(model="gpt-4.1", input="Say hi")).input_tokens > 0


async def test_async_errors(gateway: Gateway) -> None:
    async with AsyncResponsesClient(gateway.target) as anonymous:
        with pytest.raises(AuthenticationError) as auth_err:
            await anonymous.create(model="gpt-4.1", input="Say hi")
        assert auth_err.value.reason == "UNAUTHENTICATED"
        with pytest.raises(AuthenticationError):
            [e async for e in anonymous.stream(model="gpt-4.1", input="Say hi")]

    async with AsyncResponsesClient(gateway.target, api_key=MASTER_KEY, timeout=30) as client:
        with pytest.raises(NotFoundError) as model_err:
            await client.create(model="no-such-model", input="Say hi")
        assert model_err.value.reason == "MODEL_NOT_FOUND"

        gateway.fake.enqueue("error-429")
        with pytest.raises(RateLimitError) as rate_err:
            await client.create(model="gpt-4.1", input="Say hi")
        assert rate_err.value.reason == "RATE_LIMITED" and rate_err.value.retry_after == 1.0

        gateway.fake.enqueue("error-429")
        with pytest.raises(RateLimitError):
            [e async for e in client.stream(model="gpt-4.1", input="Say hi")]


async def test_async_cancel_stream_midway(gateway: Gateway) -> None:
    gateway.fake.event_delay = 0.2
    async with AsyncResponsesClient(gateway.target, api_key=MASTER_KEY, timeout=30) as client:
        stream = client.stream(model="gpt-4.1", input="Say hi")
        seen = []
        async for event in stream:
            seen.append(event.WhichOneof("kind"))
            if len(seen) == 2:
                stream.cancel()
        assert seen == TEXT_EVENTS[:2]
        with pytest.raises(RequestCancelledError):
            await stream.final_response()
        gateway.fake.event_delay = 0.0
        assert output_text(await client.create(model="gpt-4.1", input="again")) == TEXT
