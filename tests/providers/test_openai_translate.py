"""Pure translation of the native OpenAI / Azure adapters: the request body passed through, the recorded
Responses streams parsed back event by event, upstream errors, and Azure's URL shapes (no HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from responses_gateway import codec
from responses_gateway.domain.assembler import Assembler
from responses_gateway.domain.shell import response_shell
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.azure.adapter import azure_base
from responses_gateway.providers.openai import translate
from responses_gateway.v1 import request_pb2
from tests.providers.conftest import Spec, check_stream, transcript


def body(request: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    msg = codec.from_json(request_pb2.CreateResponseRequest(), request)
    return orjson.loads(translate.request_body(msg, "gpt-4.1-2025-04-14", stream=stream))


def test_request_body_is_the_clients_with_the_upstream_model() -> None:
    request = {
        "model": "my-alias",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "tools": [{"type": "web_search"}],
        "top_logprobs": 3,
        "include": ["reasoning.encrypted_content"],
        "some_future_param": {"x": 1},  # unknown to the contract, kept for the upstream
    }
    sent = body(request, stream=True)
    assert sent == {**request, "model": "gpt-4.1-2025-04-14", "stream": True}


def test_unary_body_drops_stream_fields() -> None:
    sent = body(
        {"model": "m", "input": "hi", "stream": True, "stream_options": {"include_obfuscation": False}},
        stream=False,
    )
    assert sent == {"model": "gpt-4.1-2025-04-14", "input": "hi"}


@pytest.mark.parametrize(
    "scenario", ["text", "function_calls", "reasoning", "refusal", "incomplete", "structured"]
)
def test_recorded_streams_parse_and_fold(spec: Spec, scenario: str) -> None:
    recorded = [e for e in transcript("openai", scenario) if isinstance(e, dict) and "type" in e]
    events = [translate.parse_event(json.dumps(e), "OpenAI") for e in recorded]
    request = codec.from_json(request_pb2.CreateResponseRequest(), {"model": "gpt-4.1", "input": "hi"})
    asm = Assembler(response_shell(request, "gpt-4.1"), translated=False)
    for event in events:
        asm.accept(event)
    as_json = [codec.to_json(e) for e in events]
    assert [e["type"] for e in as_json] == [e["type"] for e in recorded]
    final = check_stream(as_json, spec)
    assert final["id"] == recorded[-1]["response"]["id"]
    assert [i["id"] for i in final["output"]] == [i["id"] for i in recorded[-1]["response"]["output"]]
    assert codec.to_json(asm.response)["status"] == recorded[-1]["response"]["status"]


def test_unreadable_event_is_an_upstream_error() -> None:
    with pytest.raises(GatewayError) as info:
        translate.parse_event("{not json", "OpenAI")
    assert info.value.reason == Reason.UPSTREAM_ERROR


ERRORS = json.loads((Path(__file__).parents[1] / "transcripts" / "openai" / "errors.json").read_text())


@pytest.mark.parametrize("name", sorted(ERRORS["errors"]))
def test_upstream_errors(name: str) -> None:
    err = ERRORS["errors"][name]
    retry = 2.0 if err["status"] == 429 else None
    mapped = translate.upstream_error(err["status"], json.dumps(err["body"]).encode(), "OpenAI", retry)
    expected = {
        400: Reason.INVALID_REQUEST,
        401: Reason.UPSTREAM_AUTH_FAILED,  # the deployment's key, not the caller's
        404: Reason.NOT_FOUND,
        429: Reason.RATE_LIMITED,
    }
    expected |= {500: Reason.UPSTREAM_ERROR, 503: Reason.UPSTREAM_UNAVAILABLE}
    assert mapped.reason == expected[err["status"]] and mapped.upstream_status == err["status"]
    assert mapped.message == f"OpenAI returned {err['status']}: {err['body']['error']['message']}"
    assert mapped.param == err["body"]["error"]["param"] and mapped.retry_after == retry
    if mapped.reason == Reason.UPSTREAM_AUTH_FAILED:
        assert (
            mapped.code == "upstream_auth_failed"
        )  # the upstream's `invalid_api_key` would blame the caller
    elif isinstance(err["body"]["error"]["code"], str):
        assert mapped.code == err["body"]["error"]["code"]


def test_non_json_error_body_keeps_its_text() -> None:
    mapped = translate.upstream_error(502, b"<html>Bad gateway</html>", "OpenAI")
    assert mapped.reason == Reason.UPSTREAM_UNAVAILABLE and "Bad gateway" in mapped.message


@pytest.mark.parametrize(
    ("base", "version", "url", "query"),
    [
        ("https://r.openai.azure.com", None, "https://r.openai.azure.com/openai/v1", {}),
        ("https://r.openai.azure.com/", "v1", "https://r.openai.azure.com/openai/v1", {}),
        (
            "https://r.openai.azure.com",
            "preview",
            "https://r.openai.azure.com/openai/v1",
            {"api-version": "preview"},
        ),
        ("https://r.openai.azure.com/openai/v1", None, "https://r.openai.azure.com/openai/v1", {}),
        (
            "https://r.openai.azure.com",
            "2025-04-01-preview",
            "https://r.openai.azure.com/openai",
            {"api-version": "2025-04-01-preview"},
        ),
    ],
)
def test_azure_urls(base: str, version: str | None, url: str, query: dict[str, str]) -> None:
    assert azure_base(base, version) == (url, query)
