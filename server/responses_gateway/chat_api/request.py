"""Chat Completions request → Responses request (pure), for `POST /v1/chat/completions`.

The result is Responses JSON handed to the codec, so the chat surface reaches every provider and every
Responses-only model through the same core. Chat requests are not stored (`store: false`): they are
stateless by nature and must not fill the response store.
"""

from __future__ import annotations

from typing import Any

from responses_gateway.chat_api import tools as chat_tools
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


def _message_items(message: Any, i: int, custom_calls: set[str]) -> list[dict[str, Any]]:
    """The items of one chat message; `custom_calls` collects the ids of custom tool calls seen so far."""
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
            if call.get("type") == "custom":
                # Chat's custom tool call carries free-form `input`, as Responses' custom_tool_call does.
                custom = _obj(call.get("custom"), f"{param}.tool_calls[{j}].custom")
                custom_calls.add(call.get("id", ""))
                items.append(
                    {
                        "type": "custom_tool_call",
                        "call_id": call.get("id", ""),
                        "name": custom.get("name", ""),
                        "input": custom.get("input", ""),
                    }
                )
                continue
            fn = _obj(call.get("function"), f"{param}.tool_calls[{j}].function")
            # A namespace's function comes back named `namespace.name` (chat_api/response.py): Chat
            # function names have no dot, so the split is unambiguous.
            namespace, _, name = str(fn.get("name", "")).rpartition(".")
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id", ""),
                    **({"namespace": namespace} if namespace else {}),
                    "name": name,
                    "arguments": fn.get("arguments", ""),
                }
            )
        return items
    if role == "tool":
        call_id = message.get("tool_call_id", "")
        return [
            {
                # The answer to a custom call is a custom_tool_call_output (Responses pairs them by type).
                "type": "custom_tool_call_output" if call_id in custom_calls else "function_call_output",
                "call_id": call_id,
                "output": _text(content),
            }
        ]
    raise _bad(f"Invalid value for 'role': '{echo(role)}'.", f"{param}.role")


# LiteLLM's spelling for "this chat call goes through the Responses API" (`openai/responses/gpt-5`). The
# bridge always does, so the prefix only has to go: what is left names the deployment.
RESPONSES_PREFIXES = ("openai/responses/", "responses/")


def model_name(model: Any) -> Any:
    if isinstance(model, str):
        for prefix in RESPONSES_PREFIXES:
            if model.startswith(prefix) and len(model) > len(prefix):
                return model[len(prefix) :]
    return model


def _reasoning(value: Any) -> dict[str, Any]:
    """`reasoning_effort` as LiteLLM reads it: a string sets only the effort (a summary is not asked
    for: OpenAI refuses `summary` with a 400 for organisations that are not verified); an object
    `{effort, summary}` sets both."""
    if isinstance(value, str):
        return {"effort": value}
    if isinstance(value, dict):
        extra = sorted(set(value) - {"effort", "summary"})
        if extra:
            raise _bad(f"Unknown parameter: 'reasoning_effort.{echo(extra[0])}'.", "reasoning_effort")
        return {k: value[k] for k in ("effort", "summary") if value.get(k) is not None}
    raise _bad("Invalid type for 'reasoning_effort': expected a string or an object.", "reasoning_effort")


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = [chat_tools.tool(t, i) for i, t in enumerate(_list(body.get("tools"), "tools"))]
    # An explicit web search tool in `tools` wins; the options only add one when there is none.
    searching = any(t.get("type") in chat_tools.WEB_SEARCH_TOOLS for t in out)
    if body.get("web_search_options") is not None and not searching:
        out.append(chat_tools.web_search_tool(body["web_search_options"]))
    return out


def _text_config(body: dict[str, Any]) -> dict[str, Any]:
    text: dict[str, Any] = {}
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_schema":
            schema = _obj(fmt.get("json_schema"), "response_format.json_schema")
            text["format"] = {"type": "json_schema", **schema}
        elif fmt.get("type") == "json_object":
            text["format"] = {"type": "json_object"}
    if body.get("verbosity") is not None:
        text["verbosity"] = body["verbosity"]
    return text


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
    custom_calls: set[str] = set()
    out: dict[str, Any] = {
        "input": [it for i, m in enumerate(messages) for it in _message_items(m, i, custom_calls)],
        "store": False,
    }
    if "model" in body:
        out["model"] = model_name(body["model"])
    if isinstance(body.get("mock_response"), str):
        out["mock_response"] = body["mock_response"]  # LiteLLM's testing switch, honoured by the domain
    tools = _tools(body)
    if tools:
        out["tools"] = tools
    # Read by the transport when streaming; checked here with the rest of the body.
    _obj(body.get("stream_options"), "stream_options")
    if body.get("tool_choice") is not None:
        out["tool_choice"] = chat_tools.tool_choice(body["tool_choice"])
    for key in (
        "temperature",
        "top_p",
        "parallel_tool_calls",
        "metadata",
        "service_tier",
        "prompt_cache_key",
        "max_tool_calls",
        # Each to its own field: `user` (Chat's, deprecated) and `safety_identifier` (its successor)
        # may both be sent, and neither overwrites the other.
        "user",
        "safety_identifier",
    ):
        if body.get(key) is not None:
            out[key] = body[key]
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        out["max_output_tokens"] = max_tokens
    if body.get("reasoning_effort") is not None:
        reasoning = _reasoning(body["reasoning_effort"])
        if reasoning:
            out["reasoning"] = reasoning
    if body.get("logprobs"):
        out["include"] = ["message.output_text.logprobs"]
        if body.get("top_logprobs") is not None:
            out["top_logprobs"] = body["top_logprobs"]
    text = _text_config(body)
    if text:
        out["text"] = text
    return out, dropped
