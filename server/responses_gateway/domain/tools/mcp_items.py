"""Pure translation for the gateway's MCP loop: listed tools as the functions the model is offered,
the request's filters and approval policy, the `mcp_*` items and events the client sees, and the
function_call / function_call_output pairs the upstream sees instead."""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import json_format, struct_pb2

from responses_gateway.contract import events as ev
from responses_gateway.v1 import items_pb2, tools_pb2

Event = ev.Event
ITEM_KINDS = frozenset({"mcp_list_tools", "mcp_call", "mcp_approval_request", "mcp_approval_response"})
_FUNCTION_NAME = re.compile(r"[^A-Za-z0-9_-]")
_ARM_OF = ev.ARM_OF_TAG


def listed_tool(
    name: str, description: str | None, schema: dict[str, Any], annotations: dict[str, Any] | None
) -> items_pb2.McpListedTool:
    tool = items_pb2.McpListedTool(name=name)
    if description:
        tool.description = description
    tool.input_schema.update(schema or {"type": "object"})
    if annotations:
        tool.annotations.update(annotations)
    return tool


def _read_only(tool: items_pb2.McpListedTool) -> bool:
    hint = tool.annotations.fields.get("readOnlyHint")
    return hint is not None and hint.bool_value


def _matches(f: tools_pb2.McpToolFilter, tool: items_pb2.McpListedTool) -> bool:
    """Every criterion the filter gives holds (an empty filter matches nothing)."""
    if not f.tool_names and not f.HasField("read_only"):
        return False
    if f.tool_names and tool.name not in f.tool_names:
        return False
    return not (f.HasField("read_only") and _read_only(tool) != f.read_only)


def allowed(mcp: tools_pb2.McpTool, tool: items_pb2.McpListedTool) -> bool:
    """`allowed_tools`: a list of names, or a `{tool_names, read_only}` filter; unset: every tool."""
    if not mcp.HasField("allowed_tools"):
        return True
    a = mcp.allowed_tools
    kind = a.WhichOneof("kind")
    if kind == "tool_names":
        return tool.name in a.tool_names.values
    if kind == "filter":
        return _matches(a.filter, tool)
    if kind == "read_only_filter":
        return _matches(a.read_only_filter, tool)
    return True


def needs_approval(mcp: tools_pb2.McpTool, tool: items_pb2.McpListedTool) -> bool:
    """`require_approval`: "never", "always", or `{never: {...}, always: {...}}`; unset: always, as
    on OpenAI."""
    r = mcp.require_approval
    kind = r.WhichOneof("kind") if mcp.HasField("require_approval") else None
    if kind == "mode":
        return r.mode != tools_pb2.MCP_APPROVAL_MODE_NEVER
    if kind in ("filter", "never_filter"):
        f = getattr(r, kind)
        return not (f.HasField("never") and _matches(f.never, tool))
    return True


def function_name(label: str, tool: str, taken: set[str]) -> str:
    """The name the model sees: the tool's own when it is a valid function name nobody else uses,
    else `<label>__<tool>` made valid (and unique)."""
    if not _FUNCTION_NAME.search(tool) and 0 < len(tool) <= 64 and tool not in taken:
        return tool
    base = _FUNCTION_NAME.sub("_", f"{label}__{tool}")[:60] or "mcp_tool"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def function_tool(name: str, tool: items_pb2.McpListedTool) -> tools_pb2.Tool:
    out = tools_pb2.Tool()
    out.function.name = name
    if tool.HasField("description"):
        out.function.description = tool.description
    out.function.parameters.CopyFrom(tool.input_schema)
    if "type" not in out.function.parameters.fields:
        out.function.parameters.update({"type": "object"})
    return out


def error_text(error: items_pb2.McpCallError) -> str:
    """An mcp_call's error as the model is told it."""
    kind = error.WhichOneof("kind")
    if kind == "mcp_tool_execution_error":
        content: Any = json_format.MessageToDict(error.mcp_tool_execution_error.content)
        blocks = content if isinstance(content, list) else []
        texts = [str(b.get("text", "")) for b in blocks if isinstance(b, dict)]
        return "Error: " + ("\n".join(t for t in texts if t) or "the tool failed.")
    if kind in ("mcp_protocol_error", "http_error"):
        return f"Error: {getattr(error, kind).message}"
    if kind == "message":
        return f"Error: {error.message}"
    return "Error: the tool call failed."


def call_result_text(call: items_pb2.McpCall) -> str:
    if call.HasField("error"):
        return error_text(call.error)
    return call.output if call.HasField("output") else ""


def function_pair(call_id: str, name: str, arguments: str, output: str) -> list[items_pb2.Item]:
    """A call of the gateway's own as the upstream sees it: the model's function call and its output."""
    fc, out = items_pb2.Item(), items_pb2.Item()
    fc.function_call.call_id, fc.function_call.name = call_id, name
    fc.function_call.arguments = arguments or "{}"
    fc.function_call.status = items_pb2.ITEM_STATUS_COMPLETED
    out.function_call_output.call_id = call_id
    out.function_call_output.output.text = output
    return [fc, out]


def as_text(item: items_pb2.Item) -> list[items_pb2.Item]:
    """An MCP item of a server the request no longer has, for a provider without MCP: an assistant
    message saying what happened (no function pair: the provider would want that function offered).
    A listing says nothing the model needs now; approval answers are in the text of their request."""
    kind = item.WhichOneof("kind")
    if kind == "mcp_call":
        c = item.mcp_call
        what = (
            f"failed ({error_text(c.error)})" if c.HasField("error") else f"returned: {call_result_text(c)}"
        )
        text = (
            f"[MCP tool `{c.name}` of server `{c.server_label}` called with {c.arguments or '{}'}; it {what}]"
        )
    elif kind == "mcp_approval_request":
        r = item.mcp_approval_request
        text = f"[Asked the user to approve MCP tool `{r.name}` of server `{r.server_label}` with {r.arguments or '{}'}]"
    else:
        return []
    message = items_pb2.Item()
    message.message.role = items_pb2.MESSAGE_ROLE_ASSISTANT
    message.message.content.parts.parts.add().output_text.text = text
    return [message]


# --- the events the client sees ------------------------------------------------------------------


def _event(tag: str, item_id: str, output_index: int, **fields: str) -> Event:
    e = Event()
    body = getattr(e, _ARM_OF[tag])
    body.item_id, body.output_index = item_id, output_index
    for k, v in fields.items():
        setattr(body, k, v)
    return e


def list_tools_events(item: items_pb2.Item, index: int) -> list[Event]:
    """added (no tools yet), in_progress, completed / failed, done: as OpenAI streams a listing."""
    lt = item.mcp_list_tools
    shown = items_pb2.Item()
    shown.mcp_list_tools.id, shown.mcp_list_tools.server_label = lt.id, lt.server_label
    end = "response.mcp_list_tools.failed" if lt.HasField("error") else "response.mcp_list_tools.completed"
    return [
        ev.item_added(shown, index),
        _event("response.mcp_list_tools.in_progress", lt.id, index),
        _event(end, lt.id, index),
        ev.item_done(item, index),
    ]


def call_started(call: items_pb2.McpCall, index: int) -> list[Event]:
    item = items_pb2.Item()
    item.mcp_call.CopyFrom(call)
    item.mcp_call.status = items_pb2.MCP_CALL_STATUS_IN_PROGRESS
    return [ev.item_added(item, index), _event("response.mcp_call.in_progress", call.id, index)]


def arguments_delta(call_id: str, index: int, delta: str) -> Event:
    return _event("response.mcp_call_arguments.delta", call_id, index, delta=delta)


def arguments_done(call_id: str, index: int, arguments: str) -> Event:
    return _event("response.mcp_call_arguments.done", call_id, index, arguments=arguments)


def call_finished(call: items_pb2.McpCall, index: int) -> list[Event]:
    """completed / failed, then the item with its output or error."""
    failed = call.HasField("error")
    item = items_pb2.Item()
    item.mcp_call.CopyFrom(call)
    item.mcp_call.status = items_pb2.MCP_CALL_STATUS_FAILED if failed else items_pb2.MCP_CALL_STATUS_COMPLETED
    end = "response.mcp_call.failed" if failed else "response.mcp_call.completed"
    return [_event(end, call.id, index), ev.item_done(item, index)]


def call_item(call: items_pb2.McpCall) -> items_pb2.Item:
    """A call run before the first turn (an approved one): whole, with its status."""
    item = items_pb2.Item()
    item.mcp_call.CopyFrom(call)
    item.mcp_call.status = (
        items_pb2.MCP_CALL_STATUS_FAILED if call.HasField("error") else items_pb2.MCP_CALL_STATUS_COMPLETED
    )
    return item


def struct_of(value: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s
