"""Chat Completions tools and tool_choice → their Responses shapes (pure).

A chat request may carry tools in either spelling, as LiteLLM's bridge accepts them:

- Chat's own: `{"type": "function", "function": {...}}` and `{"type": "custom", "custom": {...}}`;
- Responses' shape, inside the chat request (LiteLLM's documented way to reach Responses-only tools
  from `/chat/completions`): `{"type": "function", "name": ...}`, `custom`, `namespace`,
  `tool_search`, `mcp` and the hosted tools. These pass on as they are; the codec checks their fields.

`web_search_options` (Chat's web search switch) becomes a `web_search` tool.
"""

from __future__ import annotations

from typing import Any

from responses_gateway.errors import GatewayError, Reason, echo

# Tool types the Responses API has and Chat Completions does not: handed on in Responses' shape.
RESPONSES_TOOLS = frozenset(
    {
        "namespace",
        "tool_search",
        "mcp",
        "web_search",
        "web_search_2025_08_26",
        "web_search_preview",
        "web_search_preview_2025_03_11",
        "file_search",
        "image_generation",
        "code_interpreter",
        "computer",
        "computer_use_preview",
        "shell",
        "local_shell",
        "apply_patch",
    }
)
WEB_SEARCH_TOOLS = frozenset(
    {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}
)


def _bad(message: str, param: str) -> GatewayError:
    return GatewayError(Reason.INVALID_REQUEST, message, param=param)


def _obj(value: Any, param: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(f"Invalid type for '{param}': expected an object.", param)
    out: dict[str, Any] = value
    return out


def _custom_format(fmt: Any, param: str) -> dict[str, Any]:
    """Chat's `{type: grammar, grammar: {definition, syntax}}` → Responses' flat grammar format."""
    given = _obj(fmt, param)
    if given.get("type") == "grammar" and "grammar" in given:
        grammar = _obj(given.get("grammar"), f"{param}.grammar")
        return {"type": "grammar", **{k: grammar[k] for k in ("syntax", "definition") if k in grammar}}
    return given


def tool(value: Any, i: int) -> dict[str, Any]:
    param = f"tools[{i}]"
    if not isinstance(value, dict):
        raise _bad("Each tool must be an object.", param)
    kind = value.get("type")
    if kind == "function" and "function" in value:
        fn = _obj(value.get("function"), f"{param}.function")
        return {
            "type": "function",
            **{k: fn[k] for k in ("name", "description", "parameters", "strict") if k in fn},
        }
    if kind == "custom" and "custom" in value:
        custom = _obj(value.get("custom"), f"{param}.custom")
        out: dict[str, Any] = {"type": "custom"}
        out.update((k, custom[k]) for k in ("name", "description") if k in custom)
        if custom.get("format") is not None:
            out["format"] = _custom_format(custom["format"], f"{param}.custom.format")
        return out
    if kind in ("function", "custom") or kind in RESPONSES_TOOLS:
        return dict(value)  # already in Responses' shape
    raise _bad(f"Unsupported tool type: '{echo(kind)}'.", f"{param}.type")


def tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    if not isinstance(choice, dict):
        raise _bad("Unsupported tool_choice.", "tool_choice")
    kind = choice.get("type")
    if kind in ("function", "custom") and isinstance(choice.get(kind), dict):
        return {"type": kind, "name": choice[kind].get("name", "")}
    if kind == "allowed_tools" and isinstance(choice.get("allowed_tools"), dict):
        inner = choice["allowed_tools"]  # Chat nests mode and tools one level down
        tools = [_named(t, j) for j, t in enumerate(inner.get("tools") or [])]
        return {"type": "allowed_tools", "mode": inner.get("mode", "auto"), "tools": tools}
    if kind in ("function", "custom", "allowed_tools", "mcp") or kind in RESPONSES_TOOLS:
        return dict(choice)  # Responses' shape
    raise _bad(f"Unsupported tool_choice type: '{echo(kind)}'.", "tool_choice.type")


def _named(value: Any, j: int) -> Any:
    """An allowed_tools entry: Chat's `{type: function, function: {name}}` → `{type: function, name}`."""
    if isinstance(value, dict) and isinstance(value.get(value.get("type")), dict):
        return {"type": value["type"], "name": value[value["type"]].get("name", "")}
    if not isinstance(value, dict):
        raise _bad("Each allowed tool must be an object.", f"tool_choice.allowed_tools.tools[{j}]")
    return value


def web_search_tool(options: Any) -> dict[str, Any]:
    """Chat's `web_search_options` → a Responses `web_search` tool: `search_context_size` as is,
    `user_location: {type: approximate, approximate: {city, ...}}` flattened to Responses' location."""
    options = _obj(options, "web_search_options")
    out: dict[str, Any] = {"type": "web_search"}
    if options.get("search_context_size") is not None:
        out["search_context_size"] = options["search_context_size"]
    location = _obj(options.get("user_location"), "web_search_options.user_location")
    if location:
        approx = _obj(location.get("approximate"), "web_search_options.user_location.approximate")
        out["user_location"] = {"type": location.get("type", "approximate"), **approx}
    return out
