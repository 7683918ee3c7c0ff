"""One in-process gateway (with a master key) in front of the OpenAI, Anthropic and chat fakes, for the
fuzz and bad-input tests: nothing a client sends may earn a 5xx or a gRPC UNKNOWN / INTERNAL.

Deployments:
    gpt-4.1             openai/gpt-4.1           the OpenAI fake (native Responses pass-through)
    claude-sonnet-4-5   anthropic/scenario-text  the Anthropic fake
    chat-model          hosted_vllm/scenario-text the Chat Completions fake (the chat bridge)
    *                   openai/*                 the OpenAI fake, accepting any model name
    garbage             openai/garbage           an upstream answering 200 with bytes that are not JSON
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.chat_upstream import FakeChat
from tests.fakes.openai_upstream import make_openai_app
from tests.fakes.server import serve_app
from tests.support.inprocess import InProcessGateway

KEY = "sk-upstream-0123456789abcdef"
MASTER_KEY = "sk-security-master-key-0123456789"
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
GRPC_AUTH = (("authorization", f"Bearer {MASTER_KEY}"),)
BODY_LIMIT = 1024 * 1024
MODELS = ("gpt-4.1", "claude-sonnet-4-5", "chat-model", "any-model-at-all")
ERROR_KEYS = {"message", "type", "param", "code"}
# FUZZ_SCALE=10 multiplies every fuzz budget, for a deeper run by hand (CI runs the default 1).
FUZZ_SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))
# What as_gateway_error says for an exception nobody mapped: a client input must never end there.
UNEXPECTED = "failed unexpectedly"


GARBAGE_MODEL = "garbage"
GARBAGE = b'{"id": "resp_1", "object": "response", oops'


async def garbage_upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """POST /v1/responses: 200 with a cut-off JSON body, or an SSE stream whose first event is cut off the
    same way. Anything else is a plain 404 (the gateway asks every native upstream about unknown ids)."""
    if scope["type"] != "http":
        return
    if (scope["method"], scope["path"]) != ("POST", "/v1/responses"):
        missing = b'{"error": {"message": "Not found", "type": "invalid_request_error"}}'
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": missing})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    streams = b'"stream": true' in body or b'"stream":true' in body
    kind = b"text/event-stream" if streams else b"application/json"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]})
    await send({"type": "http.response.body", "body": b"data: " + GARBAGE + b"\n\n" if streams else GARBAGE})


@dataclass
class Env:
    gw: InProcessGateway

    @property
    def rest_base(self) -> str:
        return f"{self.gw.http_base}/v1"


def gateway_config(oa: str, anth: str, chat: str, garbage: str, store: Path) -> dict[str, Any]:
    def deployment(name: str, model: str, base: str) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {"model": model, "api_base": base, "api_key": KEY}}

    return {
        "model_list": [
            deployment("gpt-4.1", "openai/gpt-4.1", f"{oa}/v1"),
            deployment("claude-sonnet-4-5", "anthropic/scenario-text", anth),
            deployment("chat-model", "hosted_vllm/scenario-text", f"{chat}/v1"),
            deployment("*", "openai/*", f"{oa}/v1"),
            deployment(GARBAGE_MODEL, "openai/garbage", f"{garbage}/v1"),
        ],
        "general_settings": {"master_key": MASTER_KEY},
        "gateway_settings": {
            "store": {"type": "sqlite", "path": str(store)},
            "max_request_body_bytes": BODY_LIMIT,
        },
    }


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    oa = make_openai_app(KEY, known_models=None)
    anth, chat = FakeAnthropic(api_key=KEY), FakeChat(api_key=KEY)
    tmp = tmp_path_factory.mktemp("security")
    with (
        serve_app(oa) as oa_base,
        anth.serve() as anth_base,
        chat.serve() as chat_base,
        serve_app(garbage_upstream) as garbage_base,
    ):
        oa.base_url = oa_base
        cfg = tmp / "gateway.json"
        config = gateway_config(oa_base, anth_base, chat_base, garbage_base, tmp / "responses.db")
        cfg.write_text(json.dumps(config))
        gw = InProcessGateway(cfg, grace_seconds=1)
        try:
            yield Env(gw)
        finally:
            gw.close()


@pytest.fixture(scope="session")
def http(env: Env) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=env.rest_base, headers=AUTH, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def channel(env: Env) -> Iterator[grpc.Channel]:
    # Replies may be as large as the gateway sends; requests as large as the tests make them.
    options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    with grpc.insecure_channel(env.gw.grpc_target, options=options) as ch:
        yield ch


# ------------------------------------------------------------------------------------------ verdicts
def rest_problem(status: int, content_type: str, text: str) -> str | None:
    """Why a REST reply to a client's request is wrong, or None: no 5xx, and every error OpenAI-shaped."""
    if status >= 500:
        return f"{status}: {text[:300]}"
    if UNEXPECTED in text:  # an INTERNAL error frame inside a 200 stream
        return f"{status} with an unexpected failure inside: {text[:300]}"
    if status < 400:
        return None
    if not content_type.startswith("application/json"):
        return f"{status} is not JSON ({content_type}): {text[:200]}"
    try:
        body = json.loads(text)
    except ValueError:
        return f"{status} body is not JSON: {text[:200]}"
    error = body.get("error") if isinstance(body, dict) else None
    if set(body) != {"error"} or not isinstance(error, dict) or set(error) != ERROR_KEYS:
        return f"{status} body is not OpenAI-shaped: {text[:200]}"
    if not isinstance(error["message"], str) or not error["message"] or not isinstance(error["type"], str):
        return f"{status} error has no message/type: {text[:200]}"
    if not all(error[k] is None or isinstance(error[k], str) for k in ("param", "code")):
        return f"{status} error param/code are not strings: {text[:200]}"
    if len(text) > 8192:
        return f"{status} error body is {len(text)} bytes: it echoes too much of the request"
    return None


def check_rest(r: httpx.Response) -> None:
    problem = rest_problem(r.status_code, r.headers.get("content-type", ""), r.text)
    assert problem is None, f"{r.request.method} {str(r.request.url)[:200]}: {problem}"


# Codes a client's own mistake may earn (never UNKNOWN, INTERNAL or the server-side ones).
CLIENT_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE,
}


def grpc_error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    assert isinstance(err, grpc.Call)
    status = rpc_status.from_call(err)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def grpc_problem(err: grpc.RpcError, *, core_may_answer: bool = False) -> str | None:
    """Why a gRPC error for a client's mistake is wrong, or None. `core_may_answer`: gRPC core itself
    (not the gateway) may have refused it (a message over the size limit), so no ErrorInfo is needed."""
    assert isinstance(err, grpc.Call)
    code = err.code()
    if code not in CLIENT_CODES:
        return f"{code.name}: {(err.details() or '')[:300]}"
    if len(err.details() or "") > 4096:
        return f"{code.name} with a {len(err.details() or '')}-character message"
    if grpc_error_info(err) is None and not (core_may_answer and code == grpc.StatusCode.RESOURCE_EXHAUSTED):
        return f"{code.name} without an ErrorInfo: {(err.details() or '')[:200]}"
    return None
