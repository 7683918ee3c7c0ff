"""Responses request → Anthropic Messages request (pure).

Anthropic wants `system` apart, strictly alternating user / assistant turns, tool results inside the
user turn that follows the assistant's `tool_use`, and thinking blocks (with their signature, kept in
the reasoning item's `encrypted_content`) first in the assistant turn they belong to.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from responses_gateway import codec
from responses_gateway.contract.items import input_items
from responses_gateway.providers.anthropic import hosted
from responses_gateway.providers.chat.request import foreign_compaction, parts_text
from responses_gateway.providers.features import Unsupported
from responses_gateway.providers.tool_mapping import CUSTOM_ARGUMENT, ToolMap, tool_map
from responses_gateway.providers.turns import Turns
from responses_gateway.v1 import content_pb2, items_pb2, request_pb2

# Anthropic requires max_tokens; used when the request gives no max_output_tokens.
DEFAULT_MAX_TOKENS = 4096
# reasoning.effort → thinking budget (Anthropic's minimum is 1024).
THINKING_BUDGET = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384, "xhigh": 32768}
_DATA_URL = re.compile(r"^data:(?P<media>[\w.+/-]+);base64,(?P<data>.*)$", re.S)


def _source(url: str) -> dict[str, Any]:
    m = _DATA_URL.match(url)
    if m:
        return {"type": "base64", "media_type": m["media"], "data": m["data"]}
    return {"type": "url", "url": url}


def _user_block(part: content_pb2.ContentPart, unsupported: Unsupported) -> dict[str, Any] | None:
    which = part.WhichOneof("kind")
    if which in ("input_text", "output_text", "text"):
        return {"type": "text", "text": getattr(part, which).text}
    if which == "input_image" and part.input_image.image_url:
        return {"type": "image", "source": _source(part.input_image.image_url)}
    if which == "input_file" and (part.input_file.file_data or part.input_file.file_url):
        f = part.input_file
        if f.file_data:
            data = f.file_data
            source = (
                _source(data)
                if data.startswith("data:")
                else {"type": "base64", "media_type": "application/pdf", "data": data}
            )
        else:
            source = {"type": "url", "url": f.file_url}
        block: dict[str, Any] = {"type": "document", "source": source}
        if f.filename:
            block["title"] = f.filename
        return block
    unsupported("input", f"`{which or 'unknown'}` content parts without inline data or a URL")
    return None


def _reasoning_blocks(item: items_pb2.Reasoning) -> list[dict[str, Any]]:
    if not item.encrypted_content:
        return []  # thinking without its signature cannot be sent back; Anthropic would reject it
    text = "".join(p.summary_text.text for p in item.summary) or "".join(
        p.reasoning_text.text for p in item.content
    )
    if item.encrypted_content.startswith("redacted:"):
        return [{"type": "redacted_thinking", "data": item.encrypted_content.removeprefix("redacted:")}]
    return [{"type": "thinking", "thinking": text, "signature": item.encrypted_content}]


def conversation(
    request: request_pb2.CreateResponseRequest, unsupported: Unsupported, tools: ToolMap
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, messages). Calls go back under the names the tools are offered with."""
    system: list[dict[str, Any]] = []
    if request.HasField("instructions") and request.instructions:
        system.append({"type": "text", "text": request.instructions})
    turns = Turns()
    for item in input_items(request):
        kind = item.WhichOneof("kind")
        if kind == "message":
            msg = item.message
            if msg.role in (items_pb2.MESSAGE_ROLE_SYSTEM, items_pb2.MESSAGE_ROLE_DEVELOPER):
                text = parts_text(msg.content)
                if text:
                    system.append({"type": "text", "text": text})
            elif msg.role == items_pb2.MESSAGE_ROLE_ASSISTANT:
                text = parts_text(msg.content)
                turns.add("assistant", [{"type": "text", "text": text}] if text else [])
            elif msg.content.WhichOneof("kind") == "text":
                turns.add("user", [{"type": "text", "text": msg.content.text}])
            else:
                blocks = [_user_block(p, unsupported) for p in msg.content.parts.parts]
                turns.add("user", [b for b in blocks if b is not None])
        elif kind == "function_call":
            fc = item.function_call
            try:
                args = orjson.loads(fc.arguments) if fc.arguments else {}
            except orjson.JSONDecodeError:
                args = {"arguments": fc.arguments}
            name = tools.flat_name(fc.name, fc.namespace if fc.HasField("namespace") else None)
            turns.add("assistant", [{"type": "tool_use", "id": fc.call_id, "name": name, "input": args}])
        elif kind == "custom_tool_call":
            ctc = item.custom_tool_call
            name = tools.flat_name(ctc.name, ctc.namespace if ctc.HasField("namespace") else None)
            block = {
                "type": "tool_use",
                "id": ctc.call_id,
                "name": name,
                "input": {CUSTOM_ARGUMENT: ctc.input},
            }
            turns.add("assistant", [block])
        elif kind in ("function_call_output", "custom_tool_call_output"):
            out = getattr(item, kind)
            turns.add(
                "user",
                [{"type": "tool_result", "tool_use_id": out.call_id, "content": parts_text(out.output)}],
            )
        elif kind == "reasoning":
            turns.add("assistant", _reasoning_blocks(item.reasoning))
        elif kind == "compaction":
            foreign_compaction(unsupported)
        elif kind in hosted.INPUT_KINDS:
            turns.add(*hosted.input_blocks(item, _source))
        else:
            unsupported("input", f"`{kind or 'unknown'}` input items")
    return system, turns.turns


def _tools(tools: ToolMap, hosted_specs: list[dict[str, Any]]) -> dict[str, Any]:
    """`tools` (Anthropic's own hosted ones first) and `tool_choice`; `disable_parallel_tool_use` is
    Anthropic's parallel_tool_calls false."""
    body: dict[str, Any] = {}
    specs = list(hosted_specs)
    for tool in tools.offered:
        spec: dict[str, Any] = {"name": tool.flat, "input_schema": tool.parameters}
        if tool.description:
            spec["description"] = tool.description
        if tool.strict:
            spec["strict"] = True  # Anthropic's strict tool use (structured outputs) enforces the schema
        specs.append(spec)
    if not specs:
        return body
    body["tools"] = specs
    choice = tools.choice
    out: dict[str, Any] | None = None
    if choice is not None:
        out = {"type": {"auto": "auto", "none": "none", "required": "any", "named": "tool"}[choice.mode]}
        if choice.mode == "named":
            out["name"] = choice.name
    if tools.max_calls == 1:
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    if out is not None:
        body["tool_choice"] = out
    return body


def messages_request(
    request: request_pb2.CreateResponseRequest,
    upstream_model: str,
    unsupported: Unsupported,
    tools: ToolMap | None = None,
) -> dict[str, Any]:
    """The Messages request; `tools` is the request's tool map (`tool_map`), made here when not given."""
    tools = tools if tools is not None else tool_map(request, unsupported, native=hosted.KINDS)
    system, turns = conversation(request, unsupported, tools)
    body: dict[str, Any] = {"model": upstream_model, "messages": turns, "stream": True}
    if system:
        body["system"] = system
    effort = codec.to_json(request.reasoning).get("effort") if request.HasField("reasoning") else None
    budget = THINKING_BUDGET.get(effort) if isinstance(effort, str) else None
    max_tokens = request.max_output_tokens if request.HasField("max_output_tokens") else DEFAULT_MAX_TOKENS
    if budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if max_tokens <= budget:
            max_tokens = budget + (request.max_output_tokens or DEFAULT_MAX_TOKENS)
    body["max_tokens"] = max_tokens
    _, hosted_specs = hosted.take_tools(request)  # web search, computer use: Anthropic's own tools
    body.update(_tools(tools, hosted_specs))
    fmt = request.text.format
    if fmt.WhichOneof("kind") == "json_schema":
        schema = codec.to_json(fmt.json_schema).get("schema") or {"type": "object"}
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    elif fmt.WhichOneof("kind") == "json_object":
        unsupported("text.format", "`json_object` output (use `json_schema`)")
    for name in ("temperature", "top_p"):
        if request.HasField(name):
            body[name] = getattr(request, name)
    user = request.safety_identifier or request.user
    if user:
        body["metadata"] = {"user_id": user}
    unsupported.check_request(request)
    return body


# What `POST /v1/messages/count_tokens` takes of a Messages request (it refuses the rest).
COUNT_TOKENS_KEYS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


def count_tokens_request(
    request: request_pb2.CreateResponseRequest, upstream_model: str, unsupported: Unsupported
) -> dict[str, Any]:
    """The body of `count_tokens` for the Messages request `request` would become."""
    body = messages_request(request, upstream_model, unsupported)
    return {k: body[k] for k in COUNT_TOKENS_KEYS if k in body}
