"""Responses request → Gemini `generateContent` request (pure; Google AI and Vertex AI alike).

Gemini's thought signatures travel in reasoning items' `encrypted_content`: a reasoning item in the
input puts its signature back on the next model part, as Gemini requires for multi-turn tool use.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from responses_gateway import codec
from responses_gateway.contract.items import input_items
from responses_gateway.providers.chat.request import foreign_compaction, parts_text
from responses_gateway.providers.features import Unsupported
from responses_gateway.providers.gemini import hosted
from responses_gateway.providers.tool_mapping import CUSTOM_ARGUMENT, ToolMap, tool_map
from responses_gateway.v1 import content_pb2, items_pb2, request_pb2

# reasoning.effort → thinkingBudget (tokens).
THINKING_BUDGET = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768}
_DATA_URL = re.compile(r"^data:(?P<media>[\w.+/-]+);base64,(?P<data>.*)$", re.S)


def _media(url: str, mime_hint: str | None = None) -> dict[str, Any]:
    m = _DATA_URL.match(url)
    if m:
        return {"inlineData": {"mimeType": m["media"], "data": m["data"]}}
    data: dict[str, Any] = {"fileUri": url}
    if mime_hint:
        data["mimeType"] = mime_hint
    return {"fileData": data}


def _user_part(part: content_pb2.ContentPart, unsupported: Unsupported) -> dict[str, Any] | None:
    which = part.WhichOneof("kind")
    if which in ("input_text", "output_text", "text"):
        return {"text": getattr(part, which).text}
    if which == "input_image" and part.input_image.image_url:
        return _media(part.input_image.image_url)
    if which == "input_file" and part.input_file.file_data:
        data = part.input_file.file_data
        return (
            _media(data)
            if data.startswith("data:")
            else {"inlineData": {"mimeType": "application/pdf", "data": data}}
        )
    if which == "input_file" and part.input_file.file_url:
        return _media(part.input_file.file_url, "application/pdf")
    if which == "input_audio":
        audio = part.input_audio.input_audio
        fmt = codec.to_json(audio).get("format", "wav")
        return {"inlineData": {"mimeType": f"audio/{fmt}", "data": audio.data}}
    unsupported("input", f"`{which or 'unknown'}` content parts without inline data or a URL")
    return None


class _Contents:
    def __init__(self) -> None:
        self.contents: list[dict[str, Any]] = []
        self.signature: str | None = None  # from a reasoning item, for the next model part

    def add(self, role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if role == "model" and self.signature:
            parts[0]["thoughtSignature"] = self.signature
            self.signature = None
        if self.contents and self.contents[-1]["role"] == role:
            self.contents[-1]["parts"].extend(parts)
        else:
            self.contents.append({"role": role, "parts": parts})


def _call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    call: dict[str, Any] = {"name": name, "args": args}
    if call_id and not call_id.startswith("call_gw_"):
        call["id"] = call_id
    return {"functionCall": call}


def contents(
    request: request_pb2.CreateResponseRequest, unsupported: Unsupported, tools: ToolMap
) -> tuple[list[dict[str, Any]], list[str]]:
    """(contents, system texts). Calls go back under the names the tools are offered with."""
    system: list[str] = []
    if request.HasField("instructions") and request.instructions:
        system.append(request.instructions)
    out = _Contents()
    names: dict[str, str] = {}  # call_id → function name (functionResponse needs the name)
    for item in input_items(request):
        kind = item.WhichOneof("kind")
        if kind == "message":
            msg = item.message
            if msg.role in (items_pb2.MESSAGE_ROLE_SYSTEM, items_pb2.MESSAGE_ROLE_DEVELOPER):
                system.append(parts_text(msg.content))
            elif msg.role == items_pb2.MESSAGE_ROLE_ASSISTANT:
                text = parts_text(msg.content)
                out.add("model", [{"text": text}] if text else [])
            elif msg.content.WhichOneof("kind") == "text":
                out.add("user", [{"text": msg.content.text}])
            else:
                parts = [_user_part(p, unsupported) for p in msg.content.parts.parts]
                out.add("user", [p for p in parts if p is not None])
        elif kind == "function_call":
            fc = item.function_call
            name = tools.flat_name(fc.name, fc.namespace if fc.HasField("namespace") else None)
            names[fc.call_id] = name
            try:
                args = orjson.loads(fc.arguments) if fc.arguments else {}
            except orjson.JSONDecodeError:
                args = {"arguments": fc.arguments}
            out.add("model", [_call(fc.call_id, name, args)])
        elif kind == "custom_tool_call":
            ctc = item.custom_tool_call
            name = tools.flat_name(ctc.name, ctc.namespace if ctc.HasField("namespace") else None)
            names[ctc.call_id] = name
            out.add("model", [_call(ctc.call_id, name, {CUSTOM_ARGUMENT: ctc.input})])
        elif kind in ("function_call_output", "custom_tool_call_output"):
            fco = getattr(item, kind)
            response: dict[str, Any] = {
                "name": names.get(fco.call_id, fco.call_id),
                "response": {"result": parts_text(fco.output)},
            }
            if fco.call_id and not fco.call_id.startswith("call_gw_"):
                response["id"] = fco.call_id
            out.add("user", [{"functionResponse": response}])
        elif kind == "reasoning":
            if item.reasoning.encrypted_content:
                out.signature = item.reasoning.encrypted_content
        elif kind == "compaction":
            foreign_compaction(unsupported)
        elif kind == "web_search_call":
            pass  # Gemini searches anew; the answer the search led to is the message that follows
        else:
            unsupported("input", f"`{kind or 'unknown'}` input items")
    return out.contents, system


def _tools(tools: ToolMap, grounding: list[dict[str, Any]]) -> dict[str, Any]:
    """`tools` and `toolConfig`. Gemini has no parallel_tool_calls: the stream keeps the first call of
    a turn instead (`ToolMap.max_calls`); nor a strict flag: the schema goes as `parametersJsonSchema`."""
    declarations = []
    for tool in tools.offered:
        decl: dict[str, Any] = {"name": tool.flat}
        if tool.description:
            decl["description"] = tool.description
        decl["parametersJsonSchema"] = tool.parameters
        declarations.append(decl)
    body: dict[str, Any] = {}
    if declarations or grounding:
        body["tools"] = [{"functionDeclarations": declarations}] if declarations else []
        body["tools"].extend(grounding)  # Google Search grounding, Gemini's own web search
    if not declarations:
        return body
    choice = tools.choice
    if choice is not None:
        mode = {"auto": "AUTO", "none": "NONE", "required": "ANY", "named": "ANY"}[choice.mode]
        config: dict[str, Any] = {"mode": mode}
        if choice.mode == "named":
            config["allowedFunctionNames"] = [choice.name]
        body["toolConfig"] = {"functionCallingConfig": config}
    return body


def generate_request(
    request: request_pb2.CreateResponseRequest, unsupported: Unsupported, tools: ToolMap | None = None
) -> dict[str, Any]:
    """The generateContent request; `tools` is the request's tool map, made here when not given."""
    tools = tools if tools is not None else tool_map(request, unsupported, native=hosted.KINDS)
    turns, system = contents(request, unsupported, tools)
    body: dict[str, Any] = {"contents": turns}
    if system:
        body["systemInstruction"] = {"parts": [{"text": t} for t in system if t]}
    _, grounding = hosted.take_tools(request)  # web search: Google Search grounding
    body.update(_tools(tools, grounding))
    gen: dict[str, Any] = {}
    if request.HasField("max_output_tokens"):
        gen["maxOutputTokens"] = request.max_output_tokens
    if request.HasField("temperature"):
        gen["temperature"] = request.temperature
    if request.HasField("top_p"):
        gen["topP"] = request.top_p
    fmt = request.text.format
    if fmt.WhichOneof("kind") == "json_schema":
        gen["responseMimeType"] = "application/json"
        gen["responseJsonSchema"] = codec.to_json(fmt.json_schema).get("schema") or {"type": "object"}
    elif fmt.WhichOneof("kind") == "json_object":
        gen["responseMimeType"] = "application/json"
    if request.HasField("reasoning"):
        reasoning = codec.to_json(request.reasoning)
        thinking: dict[str, Any] = {}
        budget = THINKING_BUDGET.get(str(reasoning.get("effort")))
        if budget is not None:
            thinking["thinkingBudget"] = budget
        if reasoning.get("summary") or reasoning.get("generate_summary"):
            thinking["includeThoughts"] = True
        if thinking:
            gen["thinkingConfig"] = thinking
    if gen:
        body["generationConfig"] = gen
    unsupported.check_request(request)
    return body


def count_tokens_request(
    request: request_pb2.CreateResponseRequest, upstream_model: str, unsupported: Unsupported, *, vertex: bool
) -> dict[str, Any]:
    """The body of `models/{model}:countTokens` for the generateContent request `request` would become.

    Google AI takes system instructions and tools only inside an embedded `generateContentRequest`
    (which names its model); Vertex AI takes them beside `contents`."""
    body = generate_request(request, unsupported)
    if vertex:
        return {
            k: body[k] for k in ("contents", "systemInstruction", "tools", "generationConfig") if k in body
        }
    return {"generateContentRequest": {"model": f"models/{upstream_model}", **body}}
