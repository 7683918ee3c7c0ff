"""One in-process gateway in front of every fake upstream, and the adapters the shared suite runs over.

Deployments (wildcards, so the fake picks its transcript from the model name ``scenario-<name>``):

    oa-*      openai/scenario-*                  the OpenAI fake (native Responses pass-through)
    az-*      azure/scenario-*                   the OpenAI fake behind `AzureFront` (Azure's URL + api-key)
    chat-*    hosted_vllm/scenario-*             the Chat Completions fake (the chat bridge)
    claude-*  anthropic/scenario-*               the Anthropic fake
    gem-*     gemini/scenario-*                  the Gemini fake
    mock      openai/mock + mock_response        nothing upstream
    dchat-* / dclaude-* / dgem-*                 as above with drop_params: true
    ors-*     openai/responses/scenario-*        forced Responses API
    occ-*     openai/chat_completions/scenario-* forced chat bridge (on the chat fake)
    ucc-*     openai/scenario-* + use_chat_completions_api: true (on the chat fake)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from responses_gateway.v1 import responses_service_pb2_grpc
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.chat_upstream import FakeChat
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI, make_openai_app
from tests.fakes.server import serve_app
from tests.support.clients import openai_client, responses_stub, rest_client
from tests.support.inprocess import InProcessGateway
from tests.support.spec import Spec
from tests.support.sse import sse_events

KEY = "sk-upstream-0123456789abcdef"
MOCK_TEXT = "This is the canned mock answer."
TERMINAL = ("response.completed", "response.incomplete", "response.failed")
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
TOOLS = [
    {"type": "function", "name": n, "parameters": {"type": "object", "properties": {p: {"type": "string"}}}}
    for n, p in (("get_weather", "location"), ("get_time", "timezone"))
]


# ------------------------------------------------------------------------------------------ Azure front
class AzureFront:
    """Azure's v1 surface over the OpenAI fake: `/openai/v1/...` with an `api-key` header.

    Records what Azure would receive (path, query, headers), then hands the request to the OpenAI fake as
    `/v1/...` with a Bearer key, so the fake's own validation and transcripts serve it unchanged.
    """

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.seen.append({"path": scope["path"], "query": scope["query_string"].decode(), "headers": headers})
        if not scope["path"].startswith("/openai/v1/") or "authorization" in headers:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send(
                {"type": "http.response.body", "body": b'{"error":{"code":"404","message":"Not Found"}}'}
            )
            return
        path = scope["path"].removeprefix("/openai")
        raw = [(k, v) for k, v in scope["headers"] if k.lower() != b"api-key"]
        raw.append((b"authorization", f"Bearer {headers.get('api-key', '')}".encode()))
        inner = {**scope, "path": path, "raw_path": path.encode(), "headers": raw}
        await self.fake(inner, receive, send)


# ------------------------------------------------------------------------------------------ the gateway
def _deployment(name: str, model: str, base: str, **extra: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": model, "api_base": base, "api_key": KEY, **extra}}


def gateway_config(bases: dict[str, str], store: Path) -> dict[str, Any]:
    oa, az, chat, anth, gem = (bases[k] for k in ("openai", "azure", "chat", "anthropic", "gemini"))
    models = [
        _deployment("oa-*", "openai/scenario-*", f"{oa}/v1"),
        _deployment("az-*", "azure/scenario-*", az),
        _deployment("chat-*", "hosted_vllm/scenario-*", f"{chat}/v1"),
        _deployment("claude-*", "anthropic/scenario-*", anth),
        _deployment("gem-*", "gemini/scenario-*", f"{gem}/v1beta"),
        _deployment("dchat-*", "hosted_vllm/scenario-*", f"{chat}/v1", drop_params=True),
        _deployment("dclaude-*", "anthropic/scenario-*", anth, drop_params=True),
        _deployment("dgem-*", "gemini/scenario-*", f"{gem}/v1beta", drop_params=True),
        _deployment("ors-*", "openai/responses/scenario-*", f"{oa}/v1"),
        _deployment("occ-*", "openai/chat_completions/scenario-*", f"{chat}/v1"),
        _deployment("ucc-*", "openai/scenario-*", f"{chat}/v1", use_chat_completions_api=True),
        {"model_name": "mock", "litellm_params": {"model": "openai/mock", "mock_response": MOCK_TEXT}},
    ]
    return {"model_list": models, "gateway_settings": {"store": {"type": "sqlite", "path": str(store)}}}


# ------------------------------------------------------------------------------------------ adapters
@dataclass
class Adapter:
    """One adapter under test: how to name a scenario for it, and where its upstream requests land."""

    name: str
    prefix: str
    fake: Any
    aliases: dict[str, str] = field(default_factory=dict)  # scenario kind -> this provider's transcript
    native: bool = False  # the upstream speaks Responses (and keeps state)

    def model(self, kind: str = "text") -> str:
        return f"{self.prefix}-{self.aliases.get(kind, kind)}"

    def calls(self) -> list[Any]:
        """Bodies of the model calls the upstream received, oldest first."""
        if isinstance(self.fake, FakeOpenAI):
            return [r.body for r in self.fake.create_requests]
        return [r.body for r in self.fake.requests]

    def fail_next(self, status: int, retry_after: int | None = None) -> None:
        self.fake.fail_next(status, retry_after=retry_after)


@dataclass
class Env:
    gw: InProcessGateway
    openai: FakeOpenAI
    azure: AzureFront
    anthropic: FakeAnthropic
    gemini: FakeGemini
    chat: FakeChat
    adapters: dict[str, Adapter]

    def reset(self) -> None:
        self.openai.reset()
        self.azure.seen.clear()
        for fake in (self.anthropic, self.gemini, self.chat):
            fake.reset()


ADAPTERS = ("openai", "azure", "chat", "anthropic", "gemini")
PREFIXES = {"openai": "oa", "azure": "az", "chat": "chat", "anthropic": "claude", "gemini": "gem"}
ALIASES = {  # scenario kind -> each provider's transcript for it
    "openai": {"tools": "function_calls"},
    "azure": {"tools": "function_calls"},
    "chat": {"tools": "tool_calls"},
    "anthropic": {"tools": "tool_use", "reasoning": "thinking"},
    "gemini": {"tools": "function_calls", "reasoning": "thinking"},
}


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    oa = make_openai_app(KEY)
    azure = AzureFront(oa)
    anth, gem, chat = FakeAnthropic(api_key=KEY), FakeGemini(api_key=KEY), FakeChat(api_key=KEY)
    tmp = tmp_path_factory.mktemp("providers")
    with (
        serve_app(oa) as oa_base,
        serve_app(azure) as az_base,
        anth.serve() as anth_base,
        gem.serve() as gem_base,
        chat.serve() as chat_base,
    ):
        oa.base_url = oa_base
        bases = {"openai": oa_base, "azure": az_base, "chat": chat_base, "anthropic": anth_base}
        bases["gemini"] = gem_base
        cfg = tmp / "gateway.json"
        cfg.write_text(json.dumps(gateway_config(bases, tmp / "responses.db")))
        gw = InProcessGateway(cfg, grace_seconds=1)
        fakes = {"openai": oa, "azure": oa, "chat": chat, "anthropic": anth, "gemini": gem}
        adapters = {
            name: Adapter(
                name, PREFIXES[name], fakes[name], ALIASES[name], native=name in ("openai", "azure")
            )
            for name in ADAPTERS
        }
        try:
            yield Env(gw, oa, azure, anth, gem, chat, adapters)
        finally:
            gw.close()


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fresh fakes for every test that talks to them (pure translation tests start nothing)."""
    if "env" not in request.fixturenames:
        yield
        return
    env: Env = request.getfixturevalue("env")
    env.reset()
    yield
    env.reset()


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest, env: Env) -> Adapter:
    return env.adapters[request.param]


@pytest.fixture(scope="session")
def client(env: Env) -> Iterator[openai.OpenAI]:
    with openai_client(env.gw) as c:
        yield c


@pytest.fixture(scope="session")
def http(env: Env) -> Iterator[httpx.Client]:
    with rest_client(env.gw) as c:
        yield c


@pytest.fixture(scope="session")
def stub(env: Env) -> Iterator[responses_service_pb2_grpc.ResponsesServiceStub]:
    with responses_stub(env.gw) as stub:
        yield stub


@pytest.fixture(scope="session")
def spec() -> Spec:
    return Spec()


# ------------------------------------------------------------------------------------------ streams
def stream(http: httpx.Client, body: dict[str, Any]) -> tuple[httpx.Response, list[dict[str, Any]]]:
    with http.stream("POST", "/responses", json={**body, "stream": True}) as resp:
        resp.read()
        return resp, sse_events(resp) if resp.status_code == 200 else []


_PART_TEXT = {"output_text": "text", "refusal": "refusal", "reasoning_text": "text"}


def check_stream(events: list[dict[str, Any]], spec: Spec) -> dict[str, Any]:
    """Asserts a well-formed Responses stream; returns the final Response."""
    types = [e["type"] for e in events]
    assert types[:2] == ["response.created", "response.in_progress"], types[:3]
    assert types[-1] in TERMINAL and not any(t in TERMINAL for t in types[:-1]), types[-3:]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for e in events:
        spec.check_event(e)
    order: list[str] = []
    items: dict[str, dict[str, Any]] = {}
    done: list[dict[str, Any]] = []
    for e in events[2:-1]:
        t = e["type"]
        if t == "error":  # an upstream error event, relayed before the response.failed it causes
            continue
        if t == "response.output_item.added":
            assert e["output_index"] == len(order), e
            order.append(e["item"]["id"])
            items[e["item"]["id"]] = {"parts": [], "done": False, "args": ""}
            continue
        iid = e["item"]["id"] if t == "response.output_item.done" else e["item_id"]
        state = items[iid]
        assert not state["done"], f"{t} after output_item.done"
        assert e["output_index"] == order.index(iid), e
        parts = state["parts"]
        if t == "response.output_item.done":
            assert all(p["closed"] for p in parts), f"item {iid} done with a part open"
            state["done"] = True
            done.append(e["item"])
        elif t == "response.content_part.added":
            assert e["content_index"] == len(parts)
            parts.append({"type": e["part"]["type"], "text": "", "finished": False, "closed": False})
        elif "content_index" in e:
            part = parts[e["content_index"]]
            assert not part["closed"], e
            if t == "response.content_part.done":
                assert part["finished"], f"content_part.done before the text's done: {e}"
                part["closed"] = True
            elif t.endswith(".delta"):
                assert not part["finished"]
                part["text"] += e["delta"]
            elif t.endswith(".done"):
                assert e[_PART_TEXT[part["type"]]] == part["text"], e
                part["finished"] = True
        elif t == "response.function_call_arguments.delta":
            state["args"] += e["delta"]
        elif t == "response.function_call_arguments.done":
            assert e["arguments"] == state["args"] or not state["args"], e
    final = events[-1]["response"]
    spec.check("Response", final)
    done_ids = [i["id"] for i in done]
    if final["status"] == "failed":  # a broken stream ends with whatever was open
        assert done_ids == order[: len(done_ids)]
        assert [i.get("id") for i in final["output"]] in (order, [])  # OpenAI itself sends []
    else:
        assert all(s["done"] for s in items.values()), "an item was never done"
        assert done_ids == order, "items must be done in output order"
        assert final["output"] == done
    return final


def output_of(response: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [i for i in response["output"] if i["type"] == kind]


def text_of(response: dict[str, Any]) -> str:
    return "".join(
        p.get("text", "")
        for m in output_of(response, "message")
        for p in m["content"]
        if p["type"] == "output_text"
    )


# ------------------------------------------------------------------------------------------ pure translation
def transcript(provider: str, scenario: str) -> list[Any]:
    """The streamed payloads of a recorded transcript (no HTTP): JSON objects, and `[DONE]` strings."""
    doc = json.loads((Path(__file__).parents[1] / "transcripts" / provider / f"{scenario}.json").read_text())
    return [item.get("data", item) for item in doc["stream"]]


def assemble(
    events: list[Any], spec: Spec | None = None, request: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run adapter events through the domain's assembler (as the gateway does); with `spec`, check the
    numbered stream with `check_stream`. Returns {"types": [...], "response": final Response JSON}."""
    from responses_gateway import codec
    from responses_gateway.contract import events as ev
    from responses_gateway.domain.assembler import Assembler
    from responses_gateway.domain.shell import response_shell
    from responses_gateway.v1 import request_pb2

    req = codec.from_json(request_pb2.CreateResponseRequest(), request or {"model": "m", "input": "hi"})
    asm = Assembler(response_shell(req, req.model), translated=True)
    for event in events:
        asm.accept(event)
    as_json = [codec.to_json(e) for e in events]
    if spec is not None:
        check_stream(as_json, spec)
    return {"types": [ev.event_type(e) for e in events], "response": codec.to_json(asm.response)}


def text_events(n_deltas: int, *, done: str = "response.completed") -> list[str]:
    """The event types of a one-message answer streamed in `n_deltas` deltas."""
    return [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * n_deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        done,
    ]
