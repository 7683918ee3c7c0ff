"""Chat Completions request → Responses request (pure), for `POST /v1/chat/completions`.

The result is Responses JSON handed to the codec, so the chat surface reaches every provider and every
Responses-only model through the same core. Chat requests are not stored (`store: false`): they are
stateless by nature and must not fill the response store.
"""

from __future__ import annotations

from typing import Any

from responses_gateway.errors import GatewayError, Reason, echo

_CHAT_ONLY = (
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "seed",
    "stop",
    "prediction",
    "audio",
    "modalities",
)


def _bad(message: str, param: str) -> GatewayError:
    return GatewayError(Reason.INVALID_REQUEST, message, param=param)


# Every nested value is checked for its shape before it is read: a chat body is client JSON of any
# shape, and a string where an object belongs must be a 400 naming it, not an AttributeError.
def _obj(value: Any, param: str) -> dict[str, Any]:
    """An optional JSON object (absent or null reads as empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(f"Invalid type for '{param}': expected an object.", param)
    return value


def _list(value: Any, param: str) -> list[Any]:
    """An optional JSON array (absent or null reads as empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(f"Invalid type for '{param}': expected an array.", param)
    return value


def _user_part(part: Any, param: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise _bad("Each content part must be an object.", param)
    kind = part.get("type")
    if kind == "text":
        return {"type": "input_text", "text": part.get("text", "")}
    if kind == "image_url":
        image = _obj(part.get("image_url"), f"{param}.image_url")
        out = {"type": "input_image", "image_url": image.get("url", "")}
        if image.get("detail"):
            out["detail"] = image["detail"]
        return out
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": part.get("input_audio") or {}}
    if kind == "file":
        f = _obj(part.get("file"), f"{param}.file")
        return {"type": "input_file", **{k: f[k] for k in ("file_data", "file_id", "filename") if k in f}}
    raise _bad(f"Unsupported content part type: '{echo(kind)}'.", f"{param}.type")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _message_items(message: Any, i: int) -> list[dict[str, Any]]:
    param = f"messages[{i}]"
    if not isinstance(message, dict):
        raise _bad("Each message must be an object.", param)
    role = message.get("role")
    content = message.get("content")
    if role in ("system", "developer"):
        return [{"type": "message", "role": role, "content": _text(content)}]
    if role == "user":
        if isinstance(content, list):
            parts = [_user_part(p, f"{param}.content[{j}]") for j, p in enumerate(content)]
            return [{"type": "message", "role": "user", "content": parts}]
        return [{"type": "message", "role": "user", "content": _text(content)}]
    if role == "assistant":
        items: list[dict[str, Any]] = []
        text = _text(content)
        if text:
            items.append({"type": "message", "role": "assistant", "content": text})
        for j, call in enumerate(_list(message.get("tool_calls"), f"{param}.tool_calls")):
            call = _obj(call, f"{param}.tool_calls[{j}]")
            fn = _obj(call.get("function"), f"{param}.tool_calls[{j}].function")
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id", ""),
                    "name": fn.get("name", ""),
                    "arguments": fn.get("arguments", ""),
                }
            )
        return items
    if role == "tool":
        return [
            {
                "type": "function_call_output",
                "call_id": message.get("tool_call_id", ""),
                "output": _text(content),
            }
        ]
    raise _bad(f"Invalid value for 'role': '{echo(role)}'.", f"{param}.role")


def _tool(tool: Any, i: int) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        raise _bad("Only `function` tools are supported.", f"tools[{i}].type")
    fn = _obj(tool.get("function"), f"tools[{i}].function")
    return {
        "type": "function",
        **{k: fn[k] for k in ("name", "description", "parameters", "strict") if k in fn},
    }


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {
            "type": "function",
            "name": _obj(choice.get("function"), "tool_choice.function").get("name", ""),
        }
    raise _bad("Unsupported tool_choice.", "tool_choice")


def responses_request(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the Responses JSON for a chat request, the chat-only parameters it had to drop)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("Missing required parameter: 'messages'.", "messages")
    if (body.get("n") or 1) != 1:
        raise _bad("Only n=1 is supported.", "n")
    # Sampling knobs the Responses API has no field for; dropped (and reported) rather than refused,
    # since chat clients send them routinely.
    dropped = [name for name in _CHAT_ONLY if body.get(name) is not None]
    out: dict[str, Any] = {
        "input": [it for i, m in enumerate(messages) for it in _message_items(m, i)],
        "store": False,
    }
    if "model" in body:
        out["model"] = body["model"]
    if isinstance(body.get("mock_response"), str):
        out["mock_response"] = body["mock_response"]  # LiteLLM's testing switch, honoured by the domain
    tools = _list(body.get("tools"), "tools")
    if tools:
        out["tools"] = [_tool(t, i) for i, t in enumerate(tools)]
    # Read by the transport when streaming; checked here with the rest of the body.
    _obj(body.get("stream_options"), "stream_options")
    if body.get("tool_choice") is not None:
        out["tool_choice"] = _tool_choice(body["tool_choice"])
    for key in (
        "temperature",
        "top_p",
        "parallel_tool_calls",
        "metadata",
        "service_tier",
        "prompt_cache_key",
    ):
        if body.get(key) is not None:
            out[key] = body[key]
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        out["max_output_tokens"] = max_tokens
    if body.get("reasoning_effort"):
        out["reasoning"] = {"effort": body["reasoning_effort"], "summary": "auto"}
    if body.get("user"):
        out["safety_identifier"] = body["user"]
    if body.get("logprobs"):
        out["include"] = ["message.output_text.logprobs"]
        if body.get("top_logprobs") is not None:
            out["top_logprobs"] = body["top_logprobs"]
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_schema":
            schema = _obj(fmt.get("json_schema"), "response_format.json_schema")
            out["text"] = {"format": {"type": "json_schema", **schema}}
        elif fmt.get("type") == "json_object":
            out["text"] = {"format": {"type": "json_object"}}
    return out, dropped
