"""The `model` field of a Response, one rule on every provider: the model the upstream reported
(OpenAI's dated snapshot, Anthropic's `message_start.message.model`, Gemini's `modelVersion`, a chat
chunk's `model`), else the deployment's upstream model (`litellm_params.model` without its prefix).

End to end through the gateway (the shared in-process gateway in front of the fake upstreams): the
unary answer, the stream's terminal event and the stored response (GET) agree, over REST and gRPC.
The expected names are read from the transcripts the fakes replay, so a transcript that changed
changes the expectation with it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from responses_gateway import codec
from responses_gateway.contract import events as ev
from responses_gateway.providers.anthropic.stream import AnthropicStream
from responses_gateway.providers.chat.stream import ChatStream
from responses_gateway.providers.gemini.stream import GeminiStream
from responses_gateway.v1 import request_pb2, responses_service_pb2_grpc
from tests.fakes.openai_upstream import MODEL_SNAPSHOTS
from tests.providers.conftest import Env, check_stream, stream, transcript
from tests.support.spec import Spec

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "transcripts"
UPSTREAM_MODEL = "scenario-text"  # every deployment's upstream model for the `text` scenario


def _stream_of(provider: str) -> list[dict[str, Any]]:
    doc = json.loads((TRANSCRIPTS / provider / "text.json").read_text())
    return [item["data"] for item in doc["stream"] if isinstance(item.get("data"), dict)]


def reported(provider: str) -> str:
    """The model the fake upstream of `provider` reports for the `text` scenario."""
    if provider in ("openai", "azure"):
        # The OpenAI fake reflects the request's model as OpenAI does (an alias becomes its snapshot).
        return MODEL_SNAPSHOTS.get(UPSTREAM_MODEL, UPSTREAM_MODEL)
    chunks = _stream_of(provider)
    if provider == "anthropic":
        return str(chunks[0]["message"]["model"])
    if provider == "gemini":
        return str(chunks[-1]["modelVersion"])
    return str(next(c["model"] for c in chunks if c.get("model")))  # chat


# The providers whose transcripts report a model other than the deployment's: the rule is visible.
DISTINCT = ("anthropic", "gemini", "chat")


def test_transcripts_report_another_name_than_the_deployment() -> None:
    # Without this the end-to-end checks below could pass with the old behaviour (the deployment's).
    for provider in DISTINCT:
        assert reported(provider) not in ("", UPSTREAM_MODEL), provider


@pytest.mark.parametrize("provider", ["openai", "azure", "chat", "anthropic", "gemini"])
def test_response_model_is_what_the_upstream_reported(
    env: Env, http: httpx.Client, spec: Spec, provider: str
) -> None:
    model = env.adapters[provider].model("text")
    expected = reported(provider)

    unary = http.post("/responses", json={"model": model, "input": "hi"})
    assert unary.status_code == 200, unary.text
    assert unary.json()["model"] == expected
    assert http.get(f"/responses/{unary.json()['id']}").json()["model"] == expected

    _, events = stream(http, {"model": model, "input": "hi"})
    final = check_stream(events, spec)
    assert final["status"] == "completed" and final["model"] == expected
    assert http.get(f"/responses/{final['id']}").json()["model"] == expected
    # The client asked for the model_name; which one served is a header, not the `model` field.
    assert unary.headers["x-gateway-model"] == model


@pytest.mark.parametrize("provider", DISTINCT)
def test_grpc_reads_the_same_model(env: Env, provider: str) -> None:
    model = env.adapters[provider].model("text")
    with grpc.insecure_channel(env.gw.grpc_target) as channel:
        stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        request = codec.from_json(request_pb2.CreateResponseRequest(), {"model": model, "input": "hi"})
        assert stub.CreateResponse(request, timeout=30).model == reported(provider)
        events = list(stub.StreamResponse(request, timeout=30))
    terminal = ev.response_of(events[-1])
    assert terminal is not None and terminal.model == reported(provider)


def test_chat_completions_surface_names_the_same_model(env: Env, http: httpx.Client) -> None:
    body = {"model": env.adapters["anthropic"].model("text"), "messages": [{"role": "user", "content": "hi"}]}
    done = http.post("/chat/completions", json=body)
    assert done.status_code == 200, done.text
    assert done.json()["model"] == reported("anthropic")


# --- the translators: an upstream that names no model leaves the deployment's ------------------------
def _terminal_model(events: list[Any]) -> str:
    terminal = ev.response_of(events[-1])
    assert terminal is not None and ev.is_terminal(events[-1])
    return terminal.model


def _anthropic(chunks: list[Any]) -> list[Any]:
    s = AnthropicStream("Anthropic (test)")
    events = s.start()
    for data in chunks:
        events += s.event(data)
    return events + s.end()


def _gemini(chunks: list[Any]) -> list[Any]:
    s = GeminiStream("Gemini (test)")
    events = s.start()
    for data in chunks:
        events += s.chunk(data)
    return events + s.end()


def _chat(chunks: list[Any]) -> list[Any]:
    s = ChatStream("chat (test)")
    events = s.start()
    for data in chunks:
        if isinstance(data, dict):
            events += s.chunk(data)
    return events + s.end()


def test_translators_put_the_reported_model_on_the_terminal_event_only() -> None:
    for provider, run in (("anthropic", _anthropic), ("gemini", _gemini), ("chat", _chat)):
        events = run(transcript(provider, "text"))
        assert _terminal_model(events) == reported(provider), provider
        # created / in_progress went out before the upstream's first event: the shell's model there.
        assert [ev.response_of(e).model for e in events[:2]] == ["", ""], provider  # type: ignore[union-attr]


def test_no_reported_model_leaves_the_field_to_the_shell() -> None:
    # An empty `model` does not override the shell's (the deployment's upstream model) when merged.
    anth = copy.deepcopy(transcript("anthropic", "text"))
    del anth[0]["message"]["model"]
    gem = [{k: v for k, v in c.items() if k != "modelVersion"} for c in transcript("gemini", "text")]
    chat = [
        {k: v for k, v in c.items() if k != "model"} if isinstance(c, dict) else c
        for c in transcript("chat", "text")
    ]
    assert _terminal_model(_anthropic(anth)) == ""
    assert _terminal_model(_gemini(gem)) == ""
    assert _terminal_model(_chat(chat)) == ""


def test_the_latest_model_version_wins() -> None:
    # Gemini names the version on every chunk; the last one is the one that finished the answer.
    chunks = copy.deepcopy(transcript("gemini", "text"))
    chunks[-1]["modelVersion"] = "gemini-2.5-flash-002"
    assert _terminal_model(_gemini(chunks)) == "gemini-2.5-flash-002"
