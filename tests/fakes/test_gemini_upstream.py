# mypy: disable-error-code="union-attr, index, arg-type, attr-defined, call-overload, misc, operator, list-item, dict-item, assignment"
"""The fake Gemini upstream, checked with the official `google-genai` SDK and raw HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types

from tests.fakes.gemini_upstream import FakeGemini

USER = [{"role": "user", "parts": [{"text": "Hi"}]}]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeGemini, str]]:
    fake = FakeGemini()
    with fake.serve() as base_url:
        yield fake, base_url


@pytest.fixture
def fake(served: tuple[FakeGemini, str]) -> FakeGemini:
    served[0].reset()
    return served[0]


@pytest.fixture
def base(served: tuple[FakeGemini, str], fake: FakeGemini) -> str:
    return served[1]


@pytest.fixture
def client(base: str) -> genai.Client:
    opts = types.HttpOptions(
        base_url=base, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)
    )
    return genai.Client(api_key="test-key", http_options=opts)


def post(
    base: str,
    model: str,
    body: dict[str, Any],
    *,
    method: str = "generateContent",
    query: str = "",
    key: str | None = "test-key",
) -> httpx.Response:
    headers = {"x-goog-api-key": key} if key else {}
    return httpx.post(f"{base}/v1beta/models/{model}:{method}{query}", json=body, headers=headers)


def test_text_with_sdk_and_recording(fake: FakeGemini, client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        system_instruction="Be brief.", max_output_tokens=256, temperature=0.2
    )
    resp = client.models.generate_content(model="scenario-text", contents="Hi", config=config)
    assert resp.text == "Hello! How can I help you today?"
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    assert resp.usage_metadata.cached_content_token_count == 2048 and resp.response_id
    rec = fake.last_request
    assert rec.path == "/v1beta/models/scenario-text:generateContent"
    assert rec.headers["x-goog-api-key"] == "test-key"
    assert rec.body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert rec.body["generationConfig"] == {"maxOutputTokens": 256, "temperature": 0.2}


def test_text_stream_with_sdk(fake: FakeGemini, client: genai.Client) -> None:
    chunks = list(client.models.generate_content_stream(model="scenario-text", contents="Hi"))
    assert "".join(c.text for c in chunks) == "Hello! How can I help you today?"
    assert chunks[-1].usage_metadata.total_token_count == 2109
    assert fake.last_request.path.endswith(":streamGenerateContent") and fake.last_request.query == {
        "alt": "sse"
    }


def test_raw_sse_framing_and_json_array(base: str) -> None:
    r = post(base, "scenario-text", {"contents": USER}, method="streamGenerateContent", query="?alt=sse")
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [e for e in r.text.split("\r\n\r\n") if e]
    assert len(events) == 3 and all(e.startswith("data: {") for e in events)
    r = post(base, "scenario-text", {"contents": USER}, method="streamGenerateContent")
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in r.json()] == [
        "Hello! How",
        " can I help you",
        " today?",
    ]


def test_parallel_function_calls(client: genai.Client) -> None:
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="get_weather",
                parameters_json_schema={"type": "object", "properties": {"location": {"type": "string"}}},
            ),
            types.FunctionDeclaration(name="get_time", parameters_json_schema={"type": "object"}),
        ]
    )
    config = types.GenerateContentConfig(
        tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    resp = client.models.generate_content(model="scenario-function_calls", contents="weather?", config=config)
    assert [(c.name, c.args) for c in resp.function_calls] == [
        ("get_weather", {"location": "Paris, France", "unit": "celsius"}),
        ("get_time", {"timezone": "Europe/Paris"}),
    ]
    assert resp.candidates[0].content.parts[0].thought_signature  # bytes, decoded from base64
    # answering both calls in the next turn is accepted
    history = [
        types.Content(role="user", parts=[types.Part(text="weather?")]),
        resp.candidates[0].content,
        types.Content(
            role="user",
            parts=[
                types.Part.from_function_response(name=c.name, response={"ok": True})
                for c in resp.function_calls
            ],
        ),
    ]
    assert client.models.generate_content(model="scenario-text", contents=history, config=config).text


def test_thinking_stream(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024)
    )
    parts = [
        p
        for c in client.models.generate_content_stream(
            model="scenario-thinking", contents="27*453", config=config
        )
        for p in c.candidates[0].content.parts
    ]
    assert [p.thought for p in parts] == [True, True, None, None]
    assert parts[2].thought_signature and "".join(p.text for p in parts[2:]) == "27 * 453 = 12,231."


def test_safety_and_max_tokens(client: genai.Client) -> None:
    blocked = client.models.generate_content(model="scenario-safety", contents="x")
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY and not blocked.candidates
    stopped = client.models.generate_content(model="scenario-safety_candidate", contents="x")
    assert stopped.candidates[0].finish_reason == types.FinishReason.SAFETY
    assert any(r.blocked for r in stopped.candidates[0].safety_ratings)
    cut = client.models.generate_content(model="scenario-max_tokens", contents="x")
    assert cut.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


def test_disconnect(base: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        post(
            base, "scenario-disconnect", {"contents": USER}, method="streamGenerateContent", query="?alt=sse"
        )
    with pytest.raises(httpx.RemoteProtocolError):
        post(base, "scenario-disconnect", {"contents": USER})


@pytest.mark.parametrize(
    ("status", "cls", "gstatus"),
    [
        (400, errors.ClientError, "INVALID_ARGUMENT"),
        (403, errors.ClientError, "PERMISSION_DENIED"),
        (404, errors.ClientError, "NOT_FOUND"),
        (429, errors.ClientError, "RESOURCE_EXHAUSTED"),
        (500, errors.ServerError, "INTERNAL"),
        (503, errors.ServerError, "UNAVAILABLE"),
    ],
)
def test_injected_errors(
    fake: FakeGemini, client: genai.Client, status: int, cls: type, gstatus: str
) -> None:
    fake.fail_next(status, retry_after=5 if status == 429 else None)
    with pytest.raises(cls) as err:
        client.models.generate_content(model="scenario-text", contents="Hi")
    assert err.value.code == status and err.value.status == gstatus
    assert client.models.generate_content(model="scenario-text", contents="Hi").text


def test_keys(base: str) -> None:
    r = post(base, "scenario-text", {"contents": USER}, key=None)
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
    r = post(base, "scenario-text", {"contents": USER}, key="wrong")
    assert r.status_code == 400 and r.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    r = httpx.post(
        f"{base}/v1beta/models/scenario-text:generateContent?key=test-key", json={"contents": USER}
    )
    assert r.status_code == 200


def test_snake_case_accepted(base: str) -> None:
    body = {
        "contents": USER,
        "generation_config": {"max_output_tokens": 10, "thinking_config": {"thinking_budget": 0}},
    }
    assert post(base, "scenario-text", body).status_code == 200


FC = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "contents is not specified"),
        ({"contents": USER, "foo": 1}, 'Unknown name "foo": Cannot find field.'),
        (
            {"contents": USER, "generationConfig": {"maxTokens": 5}},
            "Unknown name \"maxTokens\" at 'generation_config'",
        ),
        (
            {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
            "Please use a valid role: user, model.",
        ),
        ({"contents": [{"role": "user", "parts": [{}]}]}, "required oneof field 'data'"),
        (
            {
                "contents": [
                    {
                        "role": "user",
                        "parts": [{"text": "a", "inlineData": {"mimeType": "image/png", "data": "AA=="}}],
                    }
                ]
            },
            "required oneof field 'data'",
        ),
        (
            {"contents": [{"role": "user", "parts": [{"fileData": {"mimeType": "application/pdf"}}]}]},
            "file_uri is required",
        ),
        (
            {
                "contents": [
                    *USER,
                    {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]},
                ]
            },
            "function response turn comes immediately after a function call turn",
        ),
        (
            {
                "contents": [
                    *USER,
                    FC,
                    {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}] * 2},
                ]
            },
            "number of function response parts is equal",
        ),
        (
            {"contents": USER, "generationConfig": {"responseSchema": {"type": "OBJECT"}}},
            "response_mime_type",
        ),
        (
            {
                "contents": USER,
                "generationConfig": {
                    "responseMimeType": "application/json",
                    "responseSchema": {},
                    "responseJsonSchema": {},
                },
            },
            "cannot both be set",
        ),
        (
            {
                "contents": USER,
                "generationConfig": {"thinkingConfig": {"thinkingBudget": 10, "thinkingLevel": "low"}},
            },
            "thinking budget or thinking level",
        ),
        (
            {"contents": USER, "tools": [{"functionDeclarations": [{"name": "bad name"}]}]},
            "Invalid function name",
        ),
    ],
)
def test_validation(base: str, body: dict[str, Any], message: str) -> None:
    r = post(base, "scenario-text", body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == 400 and err["status"] == "INVALID_ARGUMENT" and message in err["message"]


def test_accepts_valid_rich_request(base: str) -> None:
    parts = [
        {"text": "see"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {
            "fileData": {
                "mimeType": "application/pdf",
                "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc",
            }
        },
    ]
    body = {
        "contents": [
            {"role": "user", "parts": parts},
            FC,
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"x": 1}}}]},
        ],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object"},
            "thinkingConfig": {"includeThoughts": True, "thinkingLevel": "high"},
        },
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT"}}]}],
    }
    assert post(base, "scenario-text", body).status_code == 200


def test_unknown_scenario_is_unknown_model(base: str) -> None:
    r = post(base, "scenario-nope", {"contents": USER})
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"
    assert r.json()["error"]["message"].startswith("models/scenario-nope is not found")


def test_hold_streams_before_upstream_finishes(fake: FakeGemini, base: str) -> None:
    fake.hold_after(1)
    with httpx.stream(
        "POST",
        f"{base}/v1beta/models/scenario-text:streamGenerateContent?alt=sse",
        headers={"x-goog-api-key": "test-key"},
        json={"contents": USER},
    ) as r:
        lines = r.iter_lines()
        first = json.loads(next(lines).removeprefix("data: "))
        assert first["candidates"][0]["content"]["parts"][0]["text"] == "Hello! How"
        fake.release()
        assert len([x for x in lines if x.startswith("data: ")]) == 2
