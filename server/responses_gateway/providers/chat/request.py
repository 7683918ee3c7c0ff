"""Responses request → Chat Completions request (pure).

Input items become chat messages the way chat APIs require them: consecutive function calls join one
assistant message's `tool_calls`, each function output becomes a `tool` message, and reasoning items
(which chat APIs cannot take back) are left out.
"""

from __future__ import annotations

from typing import Any, NoReturn

import orjson

from responses_gateway import codec
from responses_gateway.contract.items import input_items
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.features import Unsupported
from responses_gateway.providers.tool_mapping import CUSTOM_ARGUMENT, ToolMap, tool_map
from responses_gateway.v1 import content_pb2, items_pb2, request_pb2, responses_service_pb2

_ROLES = {
    items_pb2.MESSAGE_ROLE_USER: "user",
    items_pb2.MESSAGE_ROLE_ASSISTANT: "assistant",
    items_pb2.MESSAGE_ROLE_SYSTEM: "system",
    # Most chat servers know no `developer` role; `system` means the same to them.
    items_pb2.MESSAGE_ROLE_DEVELOPER: "system",
}


def parts_text(content: content_pb2.Content) -> str:
    """The text of a string-or-parts content (text, output_text, refusal and input_text parts)."""
    kind = content.WhichOneof("kind")
    if kind == "text":
        return content.text
    if kind != "parts":
        return ""
    out = []
    for part in content.parts.parts:
        which = part.WhichOneof("kind")
        if which in ("input_text", "output_text", "text", "reasoning_text", "summary_text"):
            out.append(getattr(part, which).text)
        elif which == "refusal":
            out.append(part.refusal.refusal)
    return "".join(out)


def as_create_request(
    request: responses_service_pb2.CountInputTokensRequest,
) -> request_pb2.CreateResponseRequest:
    """A token count's body as the create request it describes (the fields they share have the same
    names and types), so a counting endpoint gets exactly what a create would send."""
    return codec.from_json(request_pb2.CreateResponseRequest(), codec.to_json(request))


def foreign_compaction(unsupported: Unsupported) -> NoReturn:
    """A `compaction` item that reached a translator was not made by the gateway (the domain opens
    the gateway's own): OpenAI's encrypted context, which no other provider can read. A 400 even with
    drop_params: dropping it would silently lose the conversation it stands for."""
    raise GatewayError(
        Reason.INVALID_REQUEST,
        f"{unsupported.provider} cannot read this `compaction` item: it was not made by this gateway "
        "(items made by OpenAI's compact endpoint work with OpenAI models only).",
        param="input",
    )


def _user_part(part: content_pb2.ContentPart, unsupported: Unsupported) -> dict[str, Any] | None:
    which = part.WhichOneof("kind")
    if which in ("input_text", "output_text", "text"):
        return {"type": "text", "text": getattr(part, which).text}
    if which == "input_image":
        img = part.input_image
        if not img.image_url:
            unsupported("input", "images given by `file_id` (send an image_url or a data URL)")
            return None
        url: dict[str, Any] = {"url": img.image_url}
        detail = codec.to_json(img).get("detail")
        if detail:
            url["detail"] = detail
        return {"type": "image_url", "image_url": url}
    if which == "input_file":
        f = part.input_file
        if not f.file_data:
            unsupported("input", "files given by `file_id` or `file_url` (send `file_data`)")
            return None
        file: dict[str, Any] = {"file_data": f.file_data}
        if f.filename:
            file["filename"] = f.filename
        return {"type": "file", "file": file}
    if which == "input_audio":
        return {"type": "input_audio", "input_audio": codec.to_json(part.input_audio.input_audio)}
    unsupported("input", f"`{which or 'unknown'}` content parts")
    return None


def _content(message: items_pb2.Message, role: str, unsupported: Unsupported) -> Any:
    content = message.content
    if content.WhichOneof("kind") == "text" or role != "user":
        return parts_text(content)
    parts = [p for p in (_user_part(p, unsupported) for p in content.parts.parts) if p is not None]
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)  # plain strings suit every chat server
    return parts


def _add_call(out: list[dict[str, Any]], call: dict[str, Any]) -> None:
    """Consecutive calls join one assistant message's `tool_calls` (after its text, if any)."""
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant" and "tool_calls" in last:
        last["tool_calls"].append(call)
    elif last is not None and last["role"] == "assistant" and isinstance(last.get("content"), str):
        last["tool_calls"] = [call]
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def messages(
    request: request_pb2.CreateResponseRequest, unsupported: Unsupported, tools: ToolMap | None = None
) -> list[dict[str, Any]]:
    """Chat messages; calls go back under the names the tools are offered with."""
    tools = tools if tools is not None else tool_map(request, unsupported)
    out: list[dict[str, Any]] = []
    if request.HasField("instructions"):
        out.append({"role": "system", "content": request.instructions})
    for item in input_items(request):
        kind = item.WhichOneof("kind")
        if kind == "message":
            role = _ROLES.get(item.message.role, "user")
            out.append({"role": role, "content": _content(item.message, role, unsupported)})
        elif kind == "function_call":
            fc = item.function_call
            name = tools.flat_name(fc.name, fc.namespace if fc.HasField("namespace") else None)
            fn = {"name": name, "arguments": fc.arguments}
            _add_call(out, {"id": fc.call_id, "type": "function", "function": fn})
        elif kind == "custom_tool_call":
            ctc = item.custom_tool_call
            name = tools.flat_name(ctc.name, ctc.namespace if ctc.HasField("namespace") else None)
            fn = {"name": name, "arguments": orjson.dumps({CUSTOM_ARGUMENT: ctc.input}).decode()}
            _add_call(out, {"id": ctc.call_id, "type": "function", "function": fn})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            fco = getattr(item, kind)
            out.append({"role": "tool", "tool_call_id": fco.call_id, "content": parts_text(fco.output)})
        elif kind == "reasoning":
            continue
        elif kind == "compaction":
            foreign_compaction(unsupported)
        else:
            unsupported("input", f"`{kind or 'unknown'}` input items")
    return out


def tools_body(tools: ToolMap) -> dict[str, Any]:
    """`tools`, `tool_choice` and `parallel_tool_calls`. Custom tools and namespaces are offered as
    plain functions (what every chat server knows), `allowed_tools` as the narrowed list."""
    specs = []
    for tool in tools.offered:
        spec: dict[str, Any] = {"name": tool.flat}
        if tool.description:
            spec["description"] = tool.description
        spec["parameters"] = tool.parameters
        if tool.strict is not None:
            spec["strict"] = tool.strict
        specs.append({"type": "function", "function": spec})
    if not specs:
        return {}
    body: dict[str, Any] = {"tools": specs}
    choice = tools.choice
    if choice is not None:
        if choice.mode == "named":
            body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
        else:
            body["tool_choice"] = choice.mode
    if tools.parallel is not None:
        body["parallel_tool_calls"] = tools.parallel
    return body


def response_format(request: request_pb2.CreateResponseRequest) -> dict[str, Any] | None:
    fmt = request.text.format
    kind = fmt.WhichOneof("kind")
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = codec.to_json(fmt.json_schema)
        return {"type": "json_schema", "json_schema": {k: v for k, v in spec.items() if k != "type"}}
    return None


def chat_request(
    request: request_pb2.CreateResponseRequest,
    upstream_model: str,
    unsupported: Unsupported,
    *,
    max_tokens_key: str = "max_tokens",
    tools: ToolMap | None = None,
) -> dict[str, Any]:
    tools = tools if tools is not None else tool_map(request, unsupported)
    body: dict[str, Any] = {
        "model": upstream_model,
        "messages": messages(request, unsupported, tools),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    body.update(tools_body(tools))
    fmt = response_format(request)
    if fmt is not None:
        body["response_format"] = fmt
    if request.HasField("max_output_tokens"):
        body[max_tokens_key] = request.max_output_tokens
    for name in ("temperature", "top_p"):
        if request.HasField(name):
            body[name] = getattr(request, name)
    if request.HasField("top_logprobs"):
        body["logprobs"] = True
        body["top_logprobs"] = request.top_logprobs
    effort = codec.to_json(request.reasoning).get("effort") if request.HasField("reasoning") else None
    if effort:
        body["reasoning_effort"] = effort
    user = request.safety_identifier or request.user
    if user:
        body["user"] = user
    unsupported.check_request(request, logprobs=True)
    return body
