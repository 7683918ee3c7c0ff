"""Responses tools → the plain functions a provider without Responses' tool model is offered (pure).

Anthropic, Gemini and chat servers know one kind of tool: a named function with a JSON schema. The
Responses API has more, and this module carries them over, for every such adapter alike:

- `function` tools as they are (`strict` kept for providers that enforce it);
- `custom` (free-form) tools as a function with one string argument, `{"input": string}`; the call
  comes back as a `custom_tool_call` carrying that string, checked against the tool's grammar first
  when it has one (`providers/grammar.py`);
- `namespace` tools flattened: each inner tool offered as `<namespace>__<name>`, made safe for every
  provider's name rules (letters, digits, `_`, `-`, at most 64, not starting with a digit) and unique
  in the request, with a hash suffix where needed. The map is kept per request, so the flat name maps
  back to (namespace, name) whatever characters the originals had.

`ToolMap` is one request's result: what to offer (after `allowed_tools` narrowing), the tool choice in
neutral terms, how many calls a turn may keep, and the flat name ⇄ tool map both directions use (input
items going up, calls coming back). `flatten` alone is the seam for a gateway-run tool search: it turns
the namespaces it loads into offered tools the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from responses_gateway import codec
from responses_gateway.errors import GatewayError, Reason, echo
from responses_gateway.providers.features import Unsupported
from responses_gateway.providers.grammar import Grammar, compile_grammar
from responses_gateway.v1 import request_pb2, tools_pb2

SEPARATOR = "__"
CUSTOM_ARGUMENT = "input"  # the one string argument a custom tool is offered with
MAX_NAME = 64  # OpenAI's and Gemini's limit (Anthropic allows 128)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SAFE_START = re.compile(r"^[A-Za-z_]")

Mode = Literal["auto", "none", "required", "named"]


@dataclass(frozen=True)
class OfferedTool:
    flat: str  # the name the provider sees
    name: str  # the tool's own name
    namespace: str | None
    custom: bool
    description: str | None
    parameters: dict[str, Any]  # JSON schema of the arguments
    strict: bool | None = None
    grammar: Grammar | None = None


@dataclass(frozen=True)
class Choice:
    mode: Mode = "auto"
    name: str | None = None  # the flat name, for "named"


@dataclass
class ToolMap:
    offered: list[OfferedTool]  # what the provider is offered this turn, in request order
    choice: Choice | None  # None: the request set no tool_choice (the provider's default)
    max_calls: int | None  # tool calls a turn keeps (parallel_tool_calls false: 1; max_tool_calls)
    parallel: bool | None  # the request's parallel_tool_calls, when it set one
    native: list[tools_pb2.Tool] = field(default_factory=list)  # kinds the adapter translates itself
    by_flat: dict[str, OfferedTool] = field(default_factory=dict)  # every tool, narrowed out or not

    def load(self, tools: Sequence[tools_pb2.Tool], unsupported: Unsupported) -> list[OfferedTool]:
        """Offer more tools from now on (a tool search loading namespaces): flattened as the
        request's were, their flat names unique among those already offered; returns the new ones."""
        more, others = flatten(tools, unsupported, self.by_flat)
        for tool in others:
            unsupported("tools", f"the `{tool.WhichOneof('kind') or 'unknown'}` tool")
        self.offered.extend(more)
        self.by_flat.update((t.flat, t) for t in more)
        return more

    def lookup(self, flat: str) -> OfferedTool | None:
        return self.by_flat.get(flat)

    def flat_name(self, name: str, namespace: str | None = None) -> str:
        """The provider-side name of a call in the input (a function_call / custom_tool_call item)."""
        for tool in self.by_flat.values():
            if tool.name == name and (tool.namespace or None) == (namespace or None):
                return tool.flat
        return flat_name(namespace, name) if namespace else name


# --- naming ---------------------------------------------------------------------------------------


def flat_name(namespace: str | None, name: str, taken: Iterable[str] = ()) -> str:
    """`namespace__name`, safe for every provider's name rules and not in `taken`."""
    raw = f"{namespace}{SEPARATOR}{name}" if namespace else name
    safe = _UNSAFE.sub("_", raw)
    if not _SAFE_START.match(safe):
        safe = "_" + safe
    taken = set(taken)
    if safe == raw and len(safe) <= MAX_NAME and safe not in taken:
        return safe
    # Changed, too long or taken: a short hash of the originals keeps it unique and stable.
    digest = hashlib.sha256(f"{namespace}\0{name}".encode()).hexdigest()
    for width in (8, 16, 32):
        candidate = f"{safe[: MAX_NAME - width - 1]}_{digest[:width]}"
        if candidate not in taken:
            return candidate
    raise GatewayError(Reason.INVALID_REQUEST, f"Tool name `{echo(raw)}` is given twice.", param="tools")


# --- request tools → offered tools ----------------------------------------------------------------


def custom_parameters(grammar: Grammar | None) -> dict[str, Any]:
    """The schema of a custom tool offered as a function: one string, described so the model knows
    what to write (the grammar itself, when there is one)."""
    what = "The tool's input, as free-form text."
    if grammar is not None:
        what += f" It must match this {grammar.syntax} grammar exactly:\n{grammar.definition}"
    return {
        "type": "object",
        "properties": {CUSTOM_ARGUMENT: {"type": "string", "description": what}},
        "required": [CUSTOM_ARGUMENT],
        "additionalProperties": False,
    }


def _grammar(tool: tools_pb2.CustomTool) -> Grammar | None:
    if tool.format.WhichOneof("kind") != "grammar":
        return None
    g = tool.format.grammar
    grammar = Grammar("regex" if g.syntax == tools_pb2.GRAMMAR_SYNTAX_REGEX else "lark", g.definition)
    compile_grammar(grammar, tool.name)
    return grammar


def _described(description: str | None, ns: tools_pb2.NamespaceTool | None) -> str | None:
    """A flattened tool loses its group: its description names it, so the model keeps the context."""
    if ns is None or not ns.description:
        return description
    prefix = f"[{ns.name}: {ns.description}]"
    return f"{prefix} {description}" if description else prefix


def _offer(tool: tools_pb2.Tool, ns: tools_pb2.NamespaceTool | None, taken: set[str]) -> OfferedTool | None:
    kind = tool.WhichOneof("kind")
    if kind not in ("function", "custom"):
        return None
    namespace = ns.name if ns is not None else None
    if kind == "function":
        fn = tool.function
        return OfferedTool(
            flat_name(namespace, fn.name, taken) if namespace else fn.name,
            fn.name,
            namespace,
            False,
            _described(fn.description if fn.HasField("description") else None, ns),
            codec.to_json(fn).get("parameters") or {"type": "object", "properties": {}},
            fn.strict if fn.HasField("strict") else None,
        )
    ct = tool.custom
    grammar = _grammar(ct)
    return OfferedTool(
        flat_name(namespace, ct.name, taken) if namespace else ct.name,
        ct.name,
        namespace,
        True,
        _described(ct.description if ct.HasField("description") else None, ns),
        custom_parameters(grammar),
        None,
        grammar,
    )


def flatten(
    tools: Sequence[tools_pb2.Tool], unsupported: Unsupported, taken: Iterable[str] = ()
) -> tuple[list[OfferedTool], list[tools_pb2.Tool]]:
    """(offered tools, the tools of other kinds, untouched): function and custom tools as they are,
    each namespace's inner tools flattened. `taken` holds flat names already in use (a tool search
    loading more namespaces into a request passes the names offered so far)."""
    used = set(taken)
    offered: list[OfferedTool] = []
    others: list[tools_pb2.Tool] = []
    for tool in tools:
        if tool.WhichOneof("kind") == "namespace":
            ns = tool.namespace
            inner_tools: Sequence[tools_pb2.Tool] = ns.tools
        else:
            ns, inner_tools = None, [tool]
        for inner in inner_tools:
            one = _offer(inner, ns, used)
            if one is not None:
                offered.append(one)
                used.add(one.flat)
            elif ns is not None:
                unsupported("tools", f"the `{inner.WhichOneof('kind')}` tool inside namespace `{ns.name}`")
            else:
                others.append(tool)
    return offered, others


# --- tool_choice ----------------------------------------------------------------------------------


def _find(offered: Sequence[OfferedTool], ref: dict[str, Any], what: str) -> list[OfferedTool]:
    """The tools a tool_choice reference names: {type: function|custom, name, namespace?}, a dotted
    `namespace.name`, a flat name, or {type: namespace, name} (all of that namespace)."""
    rtype, name, ns = ref.get("type"), str(ref.get("name") or ""), ref.get("namespace")
    if rtype == "namespace":
        found = [t for t in offered if t.namespace == name]
    else:
        custom = rtype == "custom"
        kind = [t for t in offered if t.custom == custom]
        found = [t for t in kind if t.name == name and t.namespace == ns] if ns else []
        found = found or [t for t in kind if t.name == name and t.namespace is None]
        found = found or [t for t in kind if t.flat == name or f"{t.namespace}.{t.name}" == name]
        found = found or [t for t in kind if t.name == name]
        if len(found) > 1:
            raise GatewayError(
                Reason.INVALID_REQUEST,
                f"`{what}` names `{echo(name)}`, which more than one namespace has: name it as "
                "`namespace.name`.",
                param="tool_choice",
            )
    if not found:
        raise GatewayError(
            Reason.INVALID_REQUEST,
            f"`{what}` names the {rtype} tool `{echo(name)}`, which is not among `tools`.",
            param="tool_choice",
        )
    return found


_MODES: dict[int, Mode] = {
    tools_pb2.TOOL_CHOICE_MODE_NONE: "none",
    tools_pb2.TOOL_CHOICE_MODE_AUTO: "auto",
    tools_pb2.TOOL_CHOICE_MODE_REQUIRED: "required",
}
_ALLOWED_KINDS = ("function", "custom", "namespace")


def _choice(
    choice: tools_pb2.ToolChoice, offered: list[OfferedTool], unsupported: Unsupported
) -> tuple[Choice | None, list[OfferedTool]]:
    """(the choice, the tools to offer): `allowed_tools` narrows what is offered, since no provider
    here has an equivalent that keeps the other tools' schemas in the prompt."""
    kind = choice.WhichOneof("kind")
    if kind == "mode":
        return Choice(_MODES.get(choice.mode, "auto")), offered
    if kind in ("function", "custom"):
        ref = {"type": kind, "name": getattr(choice, kind).name}
        return Choice("named", _find(offered, ref, "tool_choice")[0].flat), offered
    if kind == "allowed_tools":
        allowed: list[OfferedTool] = []
        for ref in (codec.to_json(s) for s in choice.allowed_tools.tools):
            if ref.get("type") not in _ALLOWED_KINDS:
                unsupported("tool_choice", f"`allowed_tools` entries of type `{echo(str(ref.get('type')))}`")
                continue
            allowed.extend(t for t in _find(offered, ref, "tool_choice.allowed_tools") if t not in allowed)
        required = choice.allowed_tools.mode == tools_pb2.TOOL_CHOICE_ALLOWED_MODE_REQUIRED
        narrowed = [t for t in offered if t in allowed]  # request order, not the list's
        return Choice("required" if required else "auto"), narrowed
    unsupported("tool_choice", f"`tool_choice` of type `{kind}`")
    return None, offered


def tool_map(
    request: request_pb2.CreateResponseRequest,
    unsupported: Unsupported,
    *,
    native: frozenset[str] = frozenset(),
) -> ToolMap:
    """One request's tools for a function-only provider. Tool kinds in `native` are left to the
    adapter (`ToolMap.native`); any other kind is refused by `unsupported`, naming tool and provider."""
    offered, others = flatten(request.tools, unsupported)
    everything = {t.flat: t for t in offered}
    rest = []
    for tool in others:
        kind = tool.WhichOneof("kind") or "unknown"
        if kind in native:
            rest.append(tool)
        else:
            unsupported("tools", f"the `{kind}` tool")
    choice: Choice | None = None
    if request.HasField("tool_choice") and offered:
        choice, offered = _choice(request.tool_choice, offered, unsupported)
    parallel = request.parallel_tool_calls if request.HasField("parallel_tool_calls") else None
    max_calls = 1 if parallel is False else None
    if request.HasField("max_tool_calls"):
        max_calls = min(max_calls or request.max_tool_calls, request.max_tool_calls)
        if max_calls <= 0:
            choice = Choice("none")  # no call may be kept: the model should answer instead
    return ToolMap(offered, choice, max_calls, parallel, rest, everything)
