"""Responses request → Bedrock Converse / ConverseStream request body (pure).

Converse is one message shape for every model family Bedrock serves: `system` apart, strictly
alternating user / assistant turns of content blocks (`text`, `image`, `document`, `toolUse`,
`toolResult`, `reasoningContent`), tools as `toolConfig`. Binary data (image and document bytes) is
base64 in the JSON body, as the REST-JSON protocol carries blobs. What is model-specific (Claude's
extended thinking, Nova's reasoning) goes in `additionalModelRequestFields`.

Shapes: botocore's `bedrock-runtime` service model (ConverseStreamRequest and the shapes it uses).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from google.protobuf import json_format

from responses_gateway import codec
from responses_gateway.contract.items import input_items
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.chat.request import foreign_compaction, parts_text
from responses_gateway.providers.features import Unsupported
from responses_gateway.providers.tool_mapping import CUSTOM_ARGUMENT, ToolMap, tool_map
from responses_gateway.providers.turns import Turns
from responses_gateway.v1 import content_pb2, items_pb2, request_pb2

# reasoning.effort → Claude's thinking budget (its minimum is 1024), as on Anthropic's own API.
THINKING_BUDGET = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384, "xhigh": 32768}
# Claude needs maxTokens above the thinking budget; what the answer gets on top when none is given.
DEFAULT_MAX_TOKENS = 4096
_NOVA_EFFORT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}
_DATA_URL = re.compile(r"^data:(?P<media>[\w.+/-]+);base64,(?P<data>.*)$", re.S)
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif"}
IMAGE_FORMATS["image/webp"] = "webp"
DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
_EXTENSIONS = frozenset(DOCUMENT_FORMATS.values())
# Bedrock's document names: letters, digits, single spaces, hyphens, parentheses and square brackets.
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9\s\-()\[\]]+")
_FAMILY = re.compile(r"(?:^|[.:/])(anthropic|amazon\.nova|deepseek|openai|meta|mistral|cohere)[.-]")
REDACTED = "redacted:"  # encrypted_content prefix of a redacted reasoning block (its bytes, base64)


def family(model_id: str) -> str:
    """The model family of a Bedrock model id: `anthropic.claude-…`, a cross-region profile
    `us.anthropic.claude-…`, or an ARN naming one."""
    m = _FAMILY.search(model_id)
    return m[1] if m else ""


def _image(url: str, unsupported: Unsupported) -> dict[str, Any] | None:
    m = _DATA_URL.match(url)
    if m and m["media"] in IMAGE_FORMATS:
        return {"image": {"format": IMAGE_FORMATS[m["media"]], "source": {"bytes": m["data"]}}}
    if url.startswith("s3://"):
        ext = url.rsplit(".", 1)[-1].lower()
        fmt = "jpeg" if ext == "jpg" else ext
        if fmt in IMAGE_FORMATS.values():
            return {"image": {"format": fmt, "source": {"s3Location": {"uri": url}}}}
    unsupported(
        "input", "images other than inline PNG / JPEG / GIF / WebP data or s3:// locations (no web URLs)"
    )
    return None


def _document(f: content_pb2.InputFile, unsupported: Unsupported) -> dict[str, Any] | None:
    name = f.filename or "document"
    stem, _, ext = name.rpartition(".")
    fmt = ext.lower() if stem and ext.lower() in _EXTENSIONS else None
    source: dict[str, Any] | None = None
    if f.file_data:
        m = _DATA_URL.match(f.file_data)
        if m:
            fmt = DOCUMENT_FORMATS.get(m["media"], fmt)
            source = {"bytes": m["data"]}
        else:  # bare base64, as OpenAI takes a PDF
            source = {"bytes": f.file_data}
            fmt = fmt or "pdf"
    elif f.file_url.startswith("s3://"):
        source = {"s3Location": {"uri": f.file_url}}
    if source is None or fmt is None:
        unsupported("input", "files other than inline data or s3:// locations of a document format")
        return None
    clean = " ".join(_NAME_UNSAFE.sub("-", stem or name).split())[:200] or "document"
    return {"document": {"format": fmt, "name": clean, "source": source}}


def _user_block(part: content_pb2.ContentPart, unsupported: Unsupported) -> dict[str, Any] | None:
    which = part.WhichOneof("kind")
    if which in ("input_text", "output_text", "text"):
        text = getattr(part, which).text
        return {"text": text} if text else None
    if which == "input_image" and part.input_image.image_url:
        return _image(part.input_image.image_url, unsupported)
    if which == "input_file":
        return _document(part.input_file, unsupported)
    unsupported("input", f"`{which or 'unknown'}` content parts without inline data")
    return None


def _reasoning_block(item: items_pb2.Reasoning) -> list[dict[str, Any]]:
    """Claude's reasoning goes back with its signature (kept in `encrypted_content`), or not at all:
    Bedrock refuses thinking whose signature is missing."""
    if not item.encrypted_content:
        return []
    if item.encrypted_content.startswith(REDACTED):
        return [{"reasoningContent": {"redactedContent": item.encrypted_content.removeprefix(REDACTED)}}]
    text = "".join(p.summary_text.text for p in item.summary) or "".join(
        p.reasoning_text.text for p in item.content
    )
    return [{"reasoningContent": {"reasoningText": {"text": text, "signature": item.encrypted_content}}}]


def _arguments(raw: str) -> Any:
    try:
        args = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {"arguments": raw}
    return args if isinstance(args, dict) else {"arguments": args}


def conversation(
    request: request_pb2.CreateResponseRequest, unsupported: Unsupported, tools: ToolMap
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, messages)."""
    system: list[dict[str, Any]] = []
    if request.HasField("instructions") and request.instructions:
        system.append({"text": request.instructions})
    turns = Turns()
    for item in input_items(request):
        kind = item.WhichOneof("kind")
        if kind == "message":
            msg = item.message
            if msg.role in (items_pb2.MESSAGE_ROLE_SYSTEM, items_pb2.MESSAGE_ROLE_DEVELOPER):
                text = parts_text(msg.content)
                if text:
                    system.append({"text": text})
            elif msg.role == items_pb2.MESSAGE_ROLE_ASSISTANT:
                text = parts_text(msg.content)
                turns.add("assistant", [{"text": text}] if text else [])
            elif msg.content.WhichOneof("kind") == "text":
                turns.add("user", [{"text": msg.content.text}] if msg.content.text else [])
            else:
                blocks = [_user_block(p, unsupported) for p in msg.content.parts.parts]
                turns.add("user", [b for b in blocks if b is not None])
        elif kind in ("function_call", "custom_tool_call"):
            call = getattr(item, kind)
            name = tools.flat_name(call.name, call.namespace if call.HasField("namespace") else None)
            args = _arguments(call.arguments) if kind == "function_call" else {CUSTOM_ARGUMENT: call.input}
            turns.add("assistant", [{"toolUse": {"toolUseId": call.call_id, "name": name, "input": args}}])
        elif kind in ("function_call_output", "custom_tool_call_output"):
            out = getattr(item, kind)
            # Converse refuses an empty text block, even inside a tool result.
            result = {"toolUseId": out.call_id, "content": [{"text": parts_text(out.output) or " "}]}
            turns.add("user", [{"toolResult": result}])
        elif kind == "reasoning":
            turns.add("assistant", _reasoning_block(item.reasoning))
        elif kind == "compaction":
            foreign_compaction(unsupported)
        else:
            unsupported("input", f"`{kind or 'unknown'}` input items")
    return system, turns.turns


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


def tool_config(tools: ToolMap, messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """`toolConfig`. Converse has no `none` choice: the tools are left out instead, unless the
    conversation holds tool blocks, which Bedrock only takes with a `toolConfig` (the model is then
    offered them under its default choice)."""
    choice = tools.choice
    if not tools.offered or (choice is not None and choice.mode == "none" and not _has_tool_blocks(messages)):
        return None
    specs = []
    for tool in tools.offered:
        spec: dict[str, Any] = {"name": tool.flat, "inputSchema": {"json": tool.parameters}}
        if tool.description:
            spec["description"] = tool.description
        if tool.strict:
            spec["strict"] = True
        specs.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": specs}
    if choice is not None and choice.mode == "required":
        config["toolChoice"] = {"any": {}}
    elif choice is not None and choice.mode == "named":
        config["toolChoice"] = {"tool": {"name": choice.name}}
    elif choice is not None and choice.mode == "auto":
        config["toolChoice"] = {"auto": {}}
    return config


def _reasoning_fields(
    model_id: str, effort: str, max_tokens: int | None
) -> tuple[dict[str, Any], int | None]:
    """(additionalModelRequestFields, maxTokens) for reasoning.effort, by model family."""
    kind = family(model_id)
    if kind == "anthropic":
        budget = THINKING_BUDGET.get(effort)
        if budget is None:
            return {}, max_tokens
        if max_tokens is None or max_tokens <= budget:
            max_tokens = budget + (max_tokens or DEFAULT_MAX_TOKENS)
        return {"thinking": {"type": "enabled", "budget_tokens": budget}}, max_tokens
    if kind == "amazon.nova":
        return {
            "reasoningConfig": {"type": "enabled", "maxReasoningEffort": _NOVA_EFFORT[effort]}
        }, max_tokens
    # gpt-oss, DeepSeek and other open-weight models read the chat-completions spelling.
    return {"reasoning_effort": _NOVA_EFFORT[effort]}, max_tokens


def converse_request(
    request: request_pb2.CreateResponseRequest,
    model_id: str,
    unsupported: Unsupported,
    tools: ToolMap | None = None,
    guardrail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ConverseStream body (the model id goes in the URL). `guardrail`: the deployment's
    `guardrailConfig`, which a request's own `guardrailConfig` (an extra field) cannot replace."""
    tools = tools if tools is not None else tool_map(request, unsupported)
    system, messages = conversation(request, unsupported, tools)
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    max_tokens = request.max_output_tokens if request.HasField("max_output_tokens") else None
    effort = codec.to_json(request.reasoning).get("effort") if request.HasField("reasoning") else None
    if isinstance(effort, str) and effort in THINKING_BUDGET:
        extra, max_tokens = _reasoning_fields(model_id, effort, max_tokens)
        if extra:
            body["additionalModelRequestFields"] = extra
    inference: dict[str, Any] = {}
    if max_tokens is not None:
        inference["maxTokens"] = max_tokens
    if request.HasField("temperature"):
        inference["temperature"] = request.temperature
    if request.HasField("top_p"):
        inference["topP"] = request.top_p
    if inference:
        body["inferenceConfig"] = inference
    config = tool_config(tools, messages)
    if config is not None:
        body["toolConfig"] = config
    fmt = request.text.format
    if fmt.WhichOneof("kind") == "json_schema":
        spec = codec.to_json(fmt.json_schema)
        schema = spec.get("schema") or {"type": "object"}
        structure: dict[str, Any] = {
            "schema": orjson.dumps(schema).decode(),
            "name": spec.get("name") or "output",
        }
        if spec.get("description"):
            structure["description"] = spec["description"]
        body["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": structure}}}
    elif fmt.WhichOneof("kind") == "json_object":
        unsupported("text.format", "`json_object` output (use `json_schema`)")
    extra_guardrail = request.extra_fields.get("guardrailConfig")
    if guardrail:
        body["guardrailConfig"] = dict(guardrail)
    elif extra_guardrail is not None:
        if extra_guardrail.WhichOneof("kind") != "struct_value":
            raise GatewayError(
                Reason.INVALID_REQUEST, "`guardrailConfig` must be an object.", param="guardrailConfig"
            )
        body["guardrailConfig"] = json_format.MessageToDict(extra_guardrail.struct_value)
    unsupported.check_request(request)
    return body
