"""Hand-made bad inputs on every REST operation: each known cause of a 5xx, plus its neighbours.

Each answer must be a 4xx with OpenAI's error JSON (never a 5xx); where the right answer is known, the
status and the `param` are checked too. Whatever the gateway accepts must read back without a 5xx.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from responses_gateway.errors import MAX_MESSAGE_BYTES
from tests.security.conftest import BODY_LIMIT, check_rest

ID_OPS = [  # (method, path template) of every operation that takes a response id
    ("GET", "/responses/{id}"),
    ("GET", "/responses/{id}?stream=true"),
    ("DELETE", "/responses/{id}"),
    ("POST", "/responses/{id}/cancel"),
    ("GET", "/responses/{id}/input_items"),
]
BAD_IDS = [
    "resp_\x00",
    "resp_\x19abc",
    "resp_a\nb",
    "resp_\x7f",
    "\x1b[31m",
    "resp_" + "a" * 5000,
    "resp_" + "a" * 60000,
    "resp_ü",
    "resp_a b",
    "resp_a?b=c",
    "resp_a#frag",
    "..",
    "resp_a/../../models",
    "%00",
    "resp_%2F",
    "\ud7ff",
]


def _url(template: str, rid: str) -> str:
    return template.replace("{id}", quote(rid, safe=""))


def _error(r: httpx.Response, status: int | None = None, param: str | None = None) -> dict[str, Any]:
    check_rest(r)
    assert r.status_code >= 400, r.text[:300]
    if status is not None:
        assert r.status_code == status, r.text[:300]
    error: dict[str, Any] = r.json()["error"]
    if param is not None:
        assert error["param"] == param, error
    return error


def create(http: httpx.Client, model: str = "gpt-4.1", **body: Any) -> dict[str, Any]:
    r = http.post("/responses", json={"model": model, "input": "hi", **body})
    assert r.status_code == 200, r.text[:300]
    return r.json()  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------ ids
@pytest.mark.parametrize(("method", "template"), ID_OPS)
@pytest.mark.parametrize("rid", BAD_IDS, ids=lambda s: repr(s[:12]) + f"-{len(s)}")
def test_bad_response_ids(http: httpx.Client, method: str, template: str, rid: str) -> None:
    r = http.request(method, _url(template, rid))
    error = _error(r)
    assert r.status_code in (400, 404), r.text[:300]
    assert len(error["message"]) < 500, "the message echoes the whole id"


@pytest.mark.parametrize("model", ["gpt-4.1", "claude-sonnet-4-5", "chat-model"])
def test_previous_response_id_bad(http: httpx.Client, model: str) -> None:
    for rid in ("resp_\x00x", "resp_" + "a" * 100_000, "resp_a/../b"):
        r = http.post("/responses", json={"model": model, "input": "hi", "previous_response_id": rid})
        error = _error(r)
        # The native upstream's own message may quote the id too: the gateway relays it cut short.
        assert r.status_code in (400, 404) and len(error["message"]) <= MAX_MESSAGE_BYTES + 40, r.text[:300]


# ------------------------------------------------------------------------------------------ query params
HUGE = [str(2**63), str(-(2**63) - 1), "9" * 40, "1e3", "0x10", "", " 5", "NaN"]


@pytest.mark.parametrize("value", HUGE)
def test_input_items_limit_out_of_range(http: httpx.Client, value: str) -> None:
    rid = create(http)["id"]
    _error(http.get(f"/responses/{rid}/input_items", params={"limit": value}), 400, "limit")


@pytest.mark.parametrize("value", HUGE)
def test_starting_after_out_of_range(http: httpx.Client, value: str) -> None:
    rid = create(http, background=True)["id"]
    _error(http.get(f"/responses/{rid}", params={"stream": "true", "starting_after": value}), 400)


@pytest.mark.parametrize(
    "query",
    ["stream=maybe", "include_obfuscation=2", "order=sideways", "after=%00", "include=%00", "limit=-1"],
)
def test_other_bad_query(http: httpx.Client, query: str) -> None:
    rid = create(http)["id"]
    for path in (f"/responses/{rid}?{query}", f"/responses/{rid}/input_items?{query}"):
        check_rest(http.get(path))


# ------------------------------------------------------------------------------------------ bodies
BODY_OPS = ["/responses", "/responses/input_tokens", "/responses/compact", "/chat/completions"]
RAW_BODIES = [
    b"",
    b"null",
    b"[]",
    b"1",
    b'"x"',
    b"{",
    b'{"model": "gpt-4.1", "input": "\xff\xfe"}',
    b'{"model": "gpt-4.1", "input": "\\ud800"}',
    b'{"model": "gpt-4.1", "input": "hi", "temperature": 1e999}',
    b'{"model": "gpt-4.1", "input": "hi", "max_output_tokens": 99999999999999999999999}',
    b'{"model": "gpt-4.1", "input": "hi", "top_logprobs": -99999999999999999999}',
    b"{" + b'"a": 1, ' * 20000 + b'"model": "gpt-4.1"}',
]


@pytest.mark.parametrize("path", BODY_OPS)
@pytest.mark.parametrize("raw", RAW_BODIES, ids=lambda b: repr(b[:30]))
def test_malformed_bodies(http: httpx.Client, path: str, raw: bytes) -> None:
    r = http.post(path, content=raw, headers={"content-type": "application/json"})
    check_rest(r)


@pytest.mark.parametrize("path", BODY_OPS)
def test_body_over_the_limit(http: httpx.Client, path: str) -> None:
    raw = b'{"model": "gpt-4.1", "input": "' + b"a" * BODY_LIMIT + b'"}'
    _error(http.post(path, content=raw, headers={"content-type": "application/json"}), 413)


@pytest.mark.parametrize("path", BODY_OPS)
@pytest.mark.parametrize("model", ["m" * 100_000, "gpt\x00", "\u202e", "", 5, None])
def test_odd_model_names(http: httpx.Client, path: str, model: Any) -> None:
    """The catch-all deployment takes any string; an error, when there is one, does not echo it whole."""
    body: dict[str, Any] = {"model": model, "input": "hi", "messages": [{"role": "user", "content": "hi"}]}
    if path != "/chat/completions":
        body.pop("messages")
    r = http.post(path, json=body)
    check_rest(r)
    if r.status_code >= 400:
        assert len(r.json()["error"]["message"]) < 500, "the message echoes the whole model name"


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "chat-model"])
@pytest.mark.parametrize("conversation", ["conv_123", {"id": "conv_123"}])
def test_conversation_on_a_non_native_model(http: httpx.Client, model: str, conversation: Any) -> None:
    r = http.post("/responses", json={"model": model, "input": "hi", "conversation": conversation})
    error = _error(r, 400, "conversation")
    assert "Anthropic" in error["message"] or "vllm" in error["message"]


# ------------------------------------------------------------------------------------------ nesting
def nest(depth: int) -> Any:
    """A JSON schema `depth` objects deep (two JSON levels each)."""
    value: Any = {"type": "string"}
    for _ in range(depth):
        value = {"type": "object", "properties": {"p": value}}
    return value


def tool(parameters: Any) -> dict[str, Any]:
    return {"type": "function", "name": "f", "parameters": parameters}


@pytest.mark.parametrize("model", ["gpt-4.1", "claude-sonnet-4-5", "chat-model"])
@pytest.mark.parametrize("depth", [20, 50, 120])
def test_deep_tool_parameters_are_refused(http: httpx.Client, model: str, depth: int) -> None:
    r = http.post("/responses", json={"model": model, "input": "hi", "tools": [tool(nest(depth))]})
    error = _error(r, 400, "tools[0].parameters")
    assert "nested" in error["message"]


@pytest.mark.parametrize("depth", [20, 60])
def test_deep_unknown_field_in_an_input_item_is_refused(http: httpx.Client, depth: int) -> None:
    item = {"type": "message", "role": "user", "content": "hi", "x_extra": nest(depth)}
    r = http.post("/responses", json={"model": "gpt-4.1", "input": [item]})
    _error(r, 400, "input[0].x_extra")


def test_deep_lists_are_refused(http: httpx.Client) -> None:
    deep: Any = "x"
    for _ in range(60):
        deep = [deep]
    r = http.post("/responses", json={"model": "gpt-4.1", "input": "hi", "metadata_extra": deep})
    _error(r, 400, "metadata_extra")


@pytest.mark.parametrize("model", ["gpt-4.1", "claude-sonnet-4-5", "chat-model"])
def test_what_is_accepted_reads_back(http: httpx.Client, model: str) -> None:
    """The deepest nesting the gateway accepts still reads back, lists its items and can be followed up."""

    def body(depth: int) -> dict[str, Any]:
        item = {"type": "message", "role": "user", "content": "hi", "x_extra": nest(depth)}
        return {"model": model, "input": [item], "tools": [tool(nest(depth))], "background": True}

    depth, accepted = 0, None
    while True:  # the deepest accepted body: the boundary moves with the limit, not with this test
        r = http.post("/responses", json=body(depth + 1))
        check_rest(r)
        if r.status_code != 200:
            assert r.status_code == 400 and "nested" in r.json()["error"]["message"], r.text[:300]
            break
        depth, accepted = depth + 1, r
    assert depth >= 10 and accepted is not None, f"only {depth} levels accepted"
    rid = accepted.json()["id"]
    for path in (f"/responses/{rid}", f"/responses/{rid}/input_items"):
        r = http.get(path)
        check_rest(r)
        assert r.status_code == 200, r.text[:300]
    follow = http.post("/responses", json={"model": model, "input": "more", "previous_response_id": rid})
    check_rest(follow)
    assert follow.status_code == 200, follow.text[:300]


# ------------------------------------------------------------------------------------------ chat shapes
CHAT_BAD = [
    {"tools": "not a list"},
    {"tools": {"type": "function"}},
    {"tools": 5},
    {"tools": [5]},
    {"tools": [{"type": "function", "function": "f"}]},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]},
    {"tool_choice": {"type": "function", "function": "f"}},
    {"tool_choice": 5},
    {"messages": "hi"},
    {"messages": [5]},
    {"messages": [{"role": "user", "content": {"text": "hi"}}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "http://x"}]}]},
    {"messages": [{"role": "user", "content": [{"type": "file", "file": "x"}]}]},
    {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": "x"}]}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
    {"messages": [{"role": "assistant", "content": [5, "x"]}]},
    {"messages": [{"role": "assistant", "tool_calls": "x"}]},
    {"messages": [{"role": "assistant", "tool_calls": [5]}]},
    {"messages": [{"role": "assistant", "tool_calls": [{"id": 5, "function": "f"}]}]},
    {"messages": [{"role": "tool", "tool_call_id": 5, "content": 7}]},
    {"messages": [{"role": 5}]},
    {"stream": True, "stream_options": "x"},
    {"stream_options": {"include_usage": "x"}},
    {"response_format": {"type": "json_schema", "json_schema": "x"}},
    {"response_format": "json"},
    {"n": "x"},
    {"n": [1]},
    {"max_tokens": "x"},
    {"max_completion_tokens": 2**70},
    {"reasoning_effort": 5},
    {"user": 5},
    {"logprobs": True, "top_logprobs": "x"},
    {"metadata": "x"},
    {"mock_response": 5},
]


@pytest.mark.parametrize("model", ["gpt-4.1", "claude-sonnet-4-5", "chat-model"])
@pytest.mark.parametrize("extra", CHAT_BAD, ids=lambda e: str(e)[:60])
def test_chat_shapes(http: httpx.Client, model: str, extra: dict[str, Any]) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    check_rest(http.post("/chat/completions", json=body))


@pytest.mark.parametrize("tools", ["not a list", {"type": "function"}, 5])
def test_chat_tools_not_a_list_names_the_param(http: httpx.Client, tools: Any) -> None:
    body = {"model": "chat-model", "messages": [{"role": "user", "content": "hi"}], "tools": tools}
    _error(http.post("/chat/completions", json=body), 400, "tools")
