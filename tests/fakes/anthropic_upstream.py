"""Fake Anthropic Messages API (``POST {base}/v1/messages``) on loopback, fed from recorded transcripts.

    fake = FakeAnthropic(api_key="test-key")
    with fake.serve() as base_url:
        client = anthropic.Anthropic(api_key="test-key", base_url=base_url, max_retries=0)
        client.messages.create(model="scenario-tool_use", max_tokens=1024, messages=[...])
    fake.last_request.body  # exactly what was sent upstream

See ``tests/fakes/transcripts.py`` for the control API and scenario selection; scenarios are the files of
``tests/transcripts/anthropic/``. Streams are framed ``event: <type>\\ndata: <json>\\n\\n``.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.transcripts import FakeUpstream, dumps, word_count, word_set

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
DEFAULT_MESSAGES = {
    400: "Invalid request",
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "Not found",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Number of request tokens has exceeded your per-minute rate limit",
    500: "Internal server error",
    529: "Overloaded",
}
TOP_LEVEL = word_set(
    "model messages max_tokens metadata stop_sequences stream system temperature top_k top_p tools "
    "tool_choice thinking service_tier container mcp_servers context_management output_config "
    "inference_geo speed cache_control"
)
BLOCK_TYPES = word_set(
    "text image document tool_use tool_result thinking redacted_thinking search_result "
    "server_tool_use web_search_tool_result container_upload"
)
IMAGE_MEDIA_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
# `POST /v1/messages/count_tokens` takes a Messages request without the generation knobs.
COUNT_TOP_LEVEL = word_set("model messages system tools tool_choice thinking mcp_servers context_management")
COUNT_SKIP = frozenset({"type", "role", "id", "tool_use_id", "name", "signature", "media_type"})
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")


class Invalid(Exception):
    pass


def _req(cond: bool, message: str) -> None:
    if not cond:
        raise Invalid(message)


def _validate_source(loc: str, src: Any, kind: str) -> None:
    _req(isinstance(src, dict), f"{loc}: Field required")
    stype = src.get("type")
    if stype == "base64":
        _req(isinstance(src.get("data"), str) and src["data"] != "", f"{loc}.base64.data: Field required")
        if kind == "image":
            _req(
                src.get("media_type") in IMAGE_MEDIA_TYPES,
                f"{loc}.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
            )
        else:
            _req(
                src.get("media_type") == "application/pdf",
                f"{loc}.base64.media_type: Input should be 'application/pdf'",
            )
    elif stype == "url":
        url = src.get("url")
        _req(
            isinstance(url, str) and url.startswith(("http://", "https://")), f"{loc}.url.url: Field required"
        )
    elif stype == "file" or (kind == "document" and stype in {"text", "content"}):
        pass
    else:
        allowed = (
            "'base64', 'url', 'file'" if kind == "image" else "'base64', 'content', 'text', 'url', 'file'"
        )
        raise Invalid(
            f"{loc}: Input tag '{stype}' found using 'type' does not match any of the expected tags: {allowed}"
        )


def _validate_block(loc: str, block: Any, role: str) -> None:
    _req(isinstance(block, dict), f"{loc}: Input should be a valid dictionary")
    btype = block.get("type")
    _req(
        btype in BLOCK_TYPES,
        f"{loc}: Input tag '{btype}' found using 'type' does not match any of the expected tags",
    )
    if btype == "text":
        _req(isinstance(block.get("text"), str), f"{loc}.text: Field required")
        _req(block["text"] != "", "messages: text content blocks must be non-empty")
    elif btype in {"image", "document"}:
        _validate_source(f"{loc}.source", block.get("source"), btype)
    elif btype == "tool_use":
        _req(role == "assistant", f"{loc}: tool_use blocks can only be in assistant messages")
        for key in ("id", "name"):
            _req(isinstance(block.get(key), str), f"{loc}.{key}: Field required")
        _req(isinstance(block.get("input"), dict), f"{loc}.input: Input should be a valid dictionary")
    elif btype == "tool_result":
        _req(role == "user", f"{loc}: tool_result blocks can only be in user messages")
        _req(isinstance(block.get("tool_use_id"), str), f"{loc}.tool_use_id: Field required")
    elif btype == "thinking":
        _req(isinstance(block.get("thinking"), str), f"{loc}.thinking: Field required")
        _req(isinstance(block.get("signature"), str), f"{loc}.signature: Field required")


def _blocks(content: Any) -> list[Any]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def validate(body: Any) -> None:
    """Raise Invalid with the message the Messages API gives for the first problem found."""
    _req(isinstance(body, dict), "Input should be a valid dictionary")
    for key in body:
        _req(key in TOP_LEVEL, f"{key}: Extra inputs are not permitted")
    for key in ("max_tokens", "messages", "model"):
        _req(key in body, f"{key}: Field required")
    _req(isinstance(body["model"], str), "model: Input should be a valid string")
    max_tokens = body["max_tokens"]
    _req(
        isinstance(max_tokens, int) and not isinstance(max_tokens, bool),
        "max_tokens: Input should be a valid integer",
    )
    _req(max_tokens >= 1, "max_tokens: Input should be greater than or equal to 1")
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        _req(isinstance(system, list), "system: Input should be a valid string or list")
        for i, block in enumerate(system):
            _req(
                isinstance(block, dict) and block.get("type") == "text",
                f"system.{i}.type: Input should be 'text'",
            )
            _req(isinstance(block.get("text"), str), f"system.{i}.text: Field required")
    if "temperature" in body:
        temp = body["temperature"]
        _req(isinstance(temp, (int, float)) and 0 <= temp <= 1, "temperature: range: 0..1")
    _validate_thinking(body.get("thinking"), max_tokens)
    _validate_tools(body.get("tools"), body.get("tool_choice"))
    messages = body["messages"]
    _req(isinstance(messages, list), "messages: Input should be a valid list")
    _req(len(messages) > 0, "messages: at least one message is required")
    _validate_messages(messages)


def validate_count(body: Any) -> None:
    """The checks of `count_tokens`: no max_tokens or stream (Extra inputs), valid messages."""
    _req(isinstance(body, dict), "Input should be a valid dictionary")
    for key in body:
        _req(key in COUNT_TOP_LEVEL, f"{key}: Extra inputs are not permitted")
    for key in ("messages", "model"):
        _req(key in body, f"{key}: Field required")
    _validate_tools(body.get("tools"), body.get("tool_choice"))
    _req(
        isinstance(body["messages"], list) and body["messages"], "messages: at least one message is required"
    )
    _validate_messages(body["messages"])


def _validate_thinking(thinking: Any, max_tokens: int) -> None:
    if thinking is None:
        return
    _req(isinstance(thinking, dict), "thinking: Input should be a valid dictionary")
    ttype = thinking.get("type")
    _req(
        ttype in {"enabled", "disabled", "adaptive"},
        f"thinking: Input tag '{ttype}' found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'",
    )
    if ttype == "enabled":
        budget = thinking.get("budget_tokens")
        _req(isinstance(budget, int), "thinking.enabled.budget_tokens: Field required")
        _req(budget >= 1024, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        _req(
            max_tokens > budget,
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
            "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
        )


def _validate_tools(tools: Any, tool_choice: Any) -> None:
    names: set[str] = set()
    if tools is not None:
        _req(isinstance(tools, list), "tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            _req(isinstance(tool, dict), f"tools.{i}: Input should be a valid dictionary")
            name = tool.get("name")
            _req(isinstance(name, str), f"tools.{i}.custom.name: Field required")
            if tool.get("type") in (None, "custom"):
                _req(
                    bool(TOOL_NAME.match(name)),
                    f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'",
                )
                schema = tool.get("input_schema")
                _req(isinstance(schema, dict), f"tools.{i}.custom.input_schema: Field required")
                _req(
                    schema.get("type") == "object",
                    f"tools.{i}.custom.input_schema.type: Input should be 'object'",
                )
            _req(name not in names, "tools: Tool names must be unique.")
            names.add(name)
    if tool_choice is not None:
        _req(isinstance(tool_choice, dict), "tool_choice: Input should be a valid dictionary")
        ctype = tool_choice.get("type")
        _req(
            ctype in {"auto", "any", "tool", "none"},
            f"tool_choice: Input tag '{ctype}' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'",
        )
        if ctype == "tool":
            _req(isinstance(tool_choice.get("name"), str), "tool_choice.tool.name: Field required")


def _validate_messages(messages: list[Any]) -> None:
    prev_role = None
    prev_tool_use_ids: list[str] = []
    for i, msg in enumerate(messages):
        _req(isinstance(msg, dict), f"messages.{i}: Input should be a valid dictionary")
        for key in msg:
            _req(key in {"role", "content"}, f"messages.{i}.{key}: Extra inputs are not permitted")
        role = msg.get("role")
        _req(role in {"user", "assistant"}, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        _req("content" in msg, f"messages.{i}.content: Field required")
        if i == 0:
            _req(role == "user", 'messages: first message must use the "user" role')
        else:
            _req(
                role != prev_role,
                f'messages: roles must alternate between "user" and "assistant", but found multiple "{role}" roles in a row',
            )
        content = msg["content"]
        _req(isinstance(content, (str, list)), f"messages.{i}.content: Input should be a valid list")
        blocks = _blocks(content)
        for j, block in enumerate(blocks):
            _validate_block(f"messages.{i}.content.{j}", block, role)
        if role == "user":
            answered = [b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"]
            for j, block in enumerate(blocks):
                if block.get("type") == "tool_result" and block["tool_use_id"] not in prev_tool_use_ids:
                    raise Invalid(
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{block['tool_use_id']}. Each `tool_result` block must have a corresponding `tool_use` "
                        "block in the previous message."
                    )
            missing = [t for t in prev_tool_use_ids if t not in answered]
            _req(
                not missing,
                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
            )
            prev_tool_use_ids = []
        else:
            prev_tool_use_ids = [b["id"] for b in blocks if b.get("type") == "tool_use"]
        prev_role = role


def _request_id() -> str:
    return "req_" + uuid.uuid4().hex[:24]


def error_response(
    status: int, message: str | None = None, *, retry_after: int | None = None, body: Any = None
) -> Response:
    """An error exactly as Anthropic shapes it: ``{"type":"error","error":{"type","message"},"request_id"}``."""
    rid = _request_id()
    headers = {
        "request-id": rid,
        "x-should-retry": "true" if status in (408, 409, 429) or status >= 500 else "false",
    }
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    if body is None:
        etype = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
        body = {
            "type": "error",
            "error": {"type": etype, "message": message or DEFAULT_MESSAGES.get(status, etype)},
            "request_id": rid,
        }
    return JSONResponse(body, status_code=status, headers=headers)


def frame(item: dict[str, Any]) -> bytes:
    return f"event: {item['event']}\ndata: {dumps(item['data'])}\n\n".encode()


@dataclass
class FakeAnthropic(FakeUpstream):
    provider = "anthropic"

    def build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
            ]
        )

    def _refusal(self, rec: Any) -> Response | None:
        """The error a request gets before its body is looked at (injected, auth, version), if any."""
        injected = self.take_error()
        if injected:
            return error_response(
                injected.status, injected.message, retry_after=injected.retry_after, body=injected.body
            )
        # API keys come as x-api-key, or (anthropic SDK >= 2.x) as Authorization: Bearer <key>.
        auth = rec.headers.get("authorization", "")
        key = rec.headers.get("x-api-key") or (auth[7:] if auth.lower().startswith("bearer ") else None)
        if not key:
            return error_response(401, "x-api-key header is required")
        if key != self.api_key:
            return error_response(401, "invalid x-api-key")
        if not rec.headers.get("anthropic-version"):
            return error_response(400, "anthropic-version: header is required")
        return None

    async def _count_tokens(self, request: Request) -> Response:
        """`{"input_tokens": N}`, N the words of the request's texts (system, messages, tools)."""
        rec = await self.record(request)
        refused = self._refusal(rec)
        if refused is not None:
            return refused
        try:
            validate_count(rec.body)
        except Invalid as exc:
            return error_response(400, str(exc))
        return JSONResponse({"input_tokens": word_count(rec.body, COUNT_SKIP | {"model"})})

    async def _messages(self, request: Request) -> Response:
        rec = await self.record(request)
        refused = self._refusal(rec)
        if refused is not None:
            return refused
        if rec.body is None:
            try:
                json.loads(rec.raw)
            except ValueError:
                return error_response(400, "There was an error parsing the body of your request")
        try:
            validate(rec.body)
        except Invalid as exc:
            return error_response(400, str(exc))
        transcript = self.transcript(self.pick_scenario(rec.body["model"]))
        if transcript is None:
            return error_response(404, f"model: {rec.body['model']}")
        headers = {"request-id": _request_id()}
        if rec.body.get("stream"):
            return StreamingResponse(
                self.events(transcript["stream"], frame),
                media_type="text/event-stream; charset=utf-8",
                headers={**headers, "cache-control": "no-cache"},
            )
        return self.replay_json(transcript, dumps(transcript["response"]).encode(), headers)
