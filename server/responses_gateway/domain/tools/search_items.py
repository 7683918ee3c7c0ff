"""Pure translation for the gateway's tool search: which tools a request defers, the search itself
(BM25 over names and descriptions), the search function the model is offered, the
`tool_search_call` / `tool_search_output` items the client sees, and what the upstream sees instead.

The ranking is Okapi BM25 (k1 = 1.2, b = 0.75, Lucene's always-positive idf), in pure Python: each
deferred tool is one document made of its name, its description, its parameters' names and
descriptions, and its namespace's name and description. Words are split on case changes, digits and
punctuation, lower-cased, a plural `s` is dropped (so "Orders" finds `list_open_orders`) and a few
words that say nothing about a tool ("the", "of", "tool", ...) are left out. Matches scoring below
`CUTOFF` of the best one are dropped (a word shared with the whole namespace is not a match). A query
that names a namespace (`crm`: all its deferred tools) or a tool (`crm.get_invoice`, `get_invoice`)
exactly loads those tools whatever their score. At most `LIMIT` tools are loaded per search.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from responses_gateway import codec
from responses_gateway.providers import tool_mapping
from responses_gateway.providers.features import Unsupported
from responses_gateway.v1 import items_pb2, tools_pb2

LIMIT = 5
SERVER = tools_pb2.TOOL_SEARCH_EXECUTION_SERVER
CLIENT = tools_pb2.TOOL_SEARCH_EXECUTION_CLIENT
Key = tuple[str | None, str]  # (namespace, name)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# Words that say nothing about what a tool does (a query is often a sentence).
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "for",
        "from",
        "get",
        "give",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "some",
        "that",
        "the",
        "this",
        "to",
        "tool",
        "tools",
        "use",
        "what",
        "which",
        "with",
    ]
)
CUTOFF = 0.4  # a match scoring below this share of the best one is noise (a shared word)
QUERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {
            "type": "string",
            "description": "What the tools you need should do, in a few words, or a namespace or tool name.",
        }
    },
    "required": ["query"],
    "additionalProperties": False,
}


def words(text: str) -> list[str]:
    out = []
    for w in _WORD.findall(text):
        w = w.lower()
        if w in _STOP:
            continue
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.append(w)
    return out


# --- what the request defers ---------------------------------------------------------------------


def _inner(tool: tools_pb2.Tool) -> tools_pb2.FunctionTool | tools_pb2.CustomTool | None:
    kind = tool.WhichOneof("kind")
    if kind == "function":
        return tool.function
    if kind == "custom":
        return tool.custom
    return None


def deferred(tool: tools_pb2.Tool) -> bool:
    inner = _inner(tool)
    return inner is not None and inner.HasField("defer_loading") and inner.defer_loading


def name_of(tool: tools_pb2.Tool) -> str:
    inner = _inner(tool)
    return inner.name if inner is not None else ""


@dataclass(frozen=True)
class Deferred:
    key: Key
    tool: tools_pb2.Tool
    namespace: tools_pb2.NamespaceTool | None

    @property
    def description(self) -> str:
        inner = _inner(self.tool)
        return inner.description if inner is not None and inner.HasField("description") else ""

    def text(self) -> str:
        parts = [self.key[1], self.description]
        if self.namespace is not None:
            parts += [self.namespace.name, self.namespace.description]
        if self.tool.WhichOneof("kind") == "function":
            props = codec.to_json(self.tool.function).get("parameters", {}).get("properties", {})
            for pname, schema in props.items() if isinstance(props, dict) else []:
                parts.append(pname)
                if isinstance(schema, dict) and isinstance(schema.get("description"), str):
                    parts.append(schema["description"])
        return " ".join(parts)


@dataclass
class Split:
    upfront: list[tools_pb2.Tool]  # the request's tools without the deferred ones (nor tool_search)
    deferred: list[Deferred]
    search: tools_pb2.ToolSearchTool | None


def split(tools: Sequence[tools_pb2.Tool]) -> Split:
    upfront: list[tools_pb2.Tool] = []
    later: list[Deferred] = []
    search: tools_pb2.ToolSearchTool | None = None
    for tool in tools:
        kind = tool.WhichOneof("kind")
        if kind == "tool_search":
            search = tool.tool_search
        elif kind == "namespace":
            ns = tool.namespace
            kept = [t for t in ns.tools if not deferred(t)]
            later.extend(Deferred((ns.name, name_of(t)), t, ns) for t in ns.tools if deferred(t))
            if kept:
                copy = tools_pb2.Tool()
                copy.namespace.CopyFrom(ns)
                del copy.namespace.tools[:]
                copy.namespace.tools.extend(kept)
                upfront.append(copy)
        elif deferred(tool):
            later.append(Deferred((None, name_of(tool)), tool, None))
        else:
            upfront.append(tool)
    return Split(upfront, later, search)


def keys_of(tools: Iterable[tools_pb2.Tool]) -> set[Key]:
    """The tools a tool_search_output loaded."""
    out: set[Key] = set()
    for tool in tools:
        if tool.WhichOneof("kind") == "namespace":
            out.update((tool.namespace.name, name_of(t)) for t in tool.namespace.tools)
        elif _inner(tool) is not None:
            out.add((None, name_of(tool)))
    return out


def called(
    deferred_: Sequence[Deferred], items: Iterable[items_pb2.Item], loaded: set[Key]
) -> list[Deferred]:
    """The deferred tools that function / custom tool calls in `items` name (and are not loaded)."""
    names: set[Key] = set()
    for item in items:
        kind = item.WhichOneof("kind")
        if kind in ("function_call", "custom_tool_call"):
            c = getattr(item, kind)
            names.add((c.namespace if c.HasField("namespace") else None, c.name))
    return [d for d in deferred_ if d.key in names and d.key not in loaded]


def grouped(found: Sequence[Deferred]) -> list[tools_pb2.Tool]:
    """Found tools as the request defined them: a namespace's under that namespace (in order of
    first appearance), the others on their own."""
    out: list[tools_pb2.Tool] = []
    spaces: dict[str, tools_pb2.Tool] = {}
    for d in found:
        if d.namespace is None:
            out.append(d.tool)
            continue
        group = spaces.get(d.namespace.name)
        if group is None:
            group = tools_pb2.Tool()
            group.namespace.CopyFrom(d.namespace)
            del group.namespace.tools[:]
            spaces[d.namespace.name] = group
            out.append(group)
        group.namespace.tools.append(d.tool)
    return out


# --- the search -----------------------------------------------------------------------------------


@dataclass
class Index:
    docs: list[Deferred]
    _terms: list[Counter[str]] = field(default_factory=list)
    _df: Counter[str] = field(default_factory=Counter)
    _avg: float = 1.0

    def __post_init__(self) -> None:
        self._terms = [Counter(words(d.text())) for d in self.docs]
        for terms in self._terms:
            self._df.update(terms.keys())
        total = sum(sum(t.values()) for t in self._terms)
        self._avg = total / len(self._terms) if self._terms else 1.0

    def search(self, query: str, exclude: set[Key], limit: int = LIMIT) -> list[Deferred]:
        q = query.strip()
        named = [
            d
            for d in self.docs
            if d.key not in exclude
            and q
            and q in (d.key[0], d.key[1], f"{d.key[0]}.{d.key[1]}", f"{d.key[0]}__{d.key[1]}")
        ]
        if named:
            return named[:limit] if not any(q == d.key[0] for d in named) else named
        n = len(self.docs)
        scored: list[tuple[float, int]] = []
        for i, (d, terms) in enumerate(zip(self.docs, self._terms, strict=True)):
            if d.key in exclude:
                continue
            length = sum(terms.values()) or 1
            score = 0.0
            for w in set(words(q)):
                tf = terms.get(w, 0)
                if not tf:
                    continue
                df = self._df[w]
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / self._avg))
            if score > 0:
                scored.append((-score, i))
        ranked = sorted(scored)[:limit]
        return [self.docs[i] for score, i in ranked if score <= CUTOFF * ranked[0][0]]


def query_of(arguments: Any, raw: str) -> str:
    """The search words of a call: `query`, or `paths` (the client schema's), or the raw text."""
    if isinstance(arguments, dict):
        if isinstance(arguments.get("query"), str):
            return str(arguments["query"])
        paths = arguments.get("paths")
        if isinstance(paths, list):
            return " ".join(str(p) for p in paths)
    return raw


def parse_arguments(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {"query": raw}
    return value if isinstance(value, dict) else {"query": raw}


# --- what the model is offered and told -----------------------------------------------------------


def search_function(name: str, split_: Split) -> tools_pb2.Tool:
    """The search as a function: its description lists what can be searched (as OpenAI shows the
    model the names and descriptions of namespaces and deferred functions)."""
    s = split_.search
    out = tools_pb2.Tool()
    fn = out.function
    fn.name = name
    if s is not None and s.HasField("execution") and s.execution == CLIENT:
        fn.description = s.description if s.HasField("description") else _description(split_)
        if s.HasField("parameters") and s.parameters.fields:
            fn.parameters.CopyFrom(s.parameters)
        else:
            fn.parameters.update(QUERY_SCHEMA)
        return out
    fn.description = _description(split_)
    fn.parameters.update(QUERY_SCHEMA)
    return out


def _description(split_: Split) -> str:
    lines = [
        "Search for tools that are not loaded yet, by what they do, and load the best matches: "
        "they can be called from the next step on. Searchable:"
    ]
    spaces: dict[str, str] = {}
    for d in split_.deferred:
        if d.namespace is not None:
            spaces.setdefault(d.namespace.name, d.namespace.description)
    lines += [f"- namespace `{n}`: {desc}".rstrip(": ") for n, desc in spaces.items()]
    lines += [f"- `{d.key[1]}`: {d.description}".rstrip(": ") for d in split_.deferred if d.namespace is None]
    return "\n".join(lines)


def flat_names(tools: Sequence[tools_pb2.Tool]) -> dict[Key, str]:
    """The names a function-only provider will see for `tools` (as the adapters flatten them)."""
    offered, _ = tool_mapping.flatten(tools, Unsupported("gateway", drop=True))
    return {(t.namespace, t.name): t.flat for t in offered}


def result_text(loaded: Sequence[tools_pb2.Tool], names: dict[Key, str]) -> str:
    """What the model is told a search found (the tools themselves arrive in the next turn's tools)."""
    found = []
    for tool in loaded:
        members = tool.namespace.tools if tool.WhichOneof("kind") == "namespace" else [tool]
        ns = tool.namespace.name if tool.WhichOneof("kind") == "namespace" else None
        for t in members:
            key = (ns, name_of(t))
            inner = _inner(t)
            desc = f": {inner.description}" if inner is not None and inner.HasField("description") else ""
            found.append(f"- `{names.get(key) or tool_mapping.flat_name(ns, key[1])}`{desc}")
    if not found:
        return "No tool matched the search. Try other words, or answer without these tools."
    return "Loaded these tools; they can be called now:\n" + "\n".join(found)


# --- items ----------------------------------------------------------------------------------------


def call_item(
    item_id: str, call_id: str, arguments: dict[str, Any], execution: int, *, done: bool
) -> items_pb2.Item:
    item = items_pb2.Item()
    c = item.tool_search_call
    c.id, c.call_id, c.execution = item_id, call_id, execution  # type: ignore[assignment]
    c.arguments.struct_value.SetInParent()  # `arguments` is required: `{}` until they are known
    c.arguments.struct_value.update(arguments)
    c.status = items_pb2.ITEM_STATUS_COMPLETED if done else items_pb2.ITEM_STATUS_IN_PROGRESS
    return item


def output_item(item_id: str, call_id: str, loaded: Sequence[tools_pb2.Tool]) -> items_pb2.Item:
    item = items_pb2.Item()
    o = item.tool_search_output
    o.id, o.call_id, o.execution = item_id, call_id, SERVER
    o.tools.extend(loaded)
    for tool in o.tools:
        # As a Response lists function tools: `strict` filled in (OpenAI's default, true).
        if tool.WhichOneof("kind") == "function" and not tool.function.HasField("strict"):
            tool.function.strict = True
    o.status = items_pb2.ITEM_STATUS_COMPLETED
    return item


def _call_id(item: items_pb2.ToolSearchCall | items_pb2.ToolSearchOutput) -> str:
    return item.call_id if item.HasField("call_id") else ""


def loaded_in(items: Iterable[items_pb2.Item]) -> list[tools_pb2.Tool]:
    """Every tool the conversation's tool_search_output items loaded, in order."""
    return [
        t for i in items if i.WhichOneof("kind") == "tool_search_output" for t in i.tool_search_output.tools
    ]


def upstream_items(
    items: Sequence[items_pb2.Item], function: str, results: dict[str, str]
) -> list[items_pb2.Item]:
    """The conversation as a function-only upstream sees it: each tool_search_call a call of the
    search function, each tool_search_output (or, for a search of this response, `results`) its
    output; an output without a call id answers the search call before it."""
    outputs = {
        _call_id(i.tool_search_output)
        for i in items
        if i.WhichOneof("kind") == "tool_search_output" and _call_id(i.tool_search_output)
    }
    out: list[items_pb2.Item] = []
    last_call = ""
    for item in items:
        kind = item.WhichOneof("kind")
        if kind == "tool_search_call":
            c = item.tool_search_call
            last_call = _call_id(c) or (c.id if c.HasField("id") else "") or "tool_search"
            fc = items_pb2.Item()
            fc.function_call.call_id, fc.function_call.name = last_call, function
            args = codec.to_json(c).get("arguments")
            fc.function_call.arguments = json.dumps(args if isinstance(args, dict) else {})
            fc.function_call.status = items_pb2.ITEM_STATUS_COMPLETED
            out.append(fc)
            if last_call in results and last_call not in outputs:
                out.append(_output(last_call, results[last_call]))
        elif kind == "tool_search_output":
            o = item.tool_search_output
            tools = list(o.tools)
            out.append(_output(_call_id(o) or last_call, result_text(tools, flat_names(tools))))
        else:
            out.append(item)
    return out


def _output(call_id: str, text: str) -> items_pb2.Item:
    item = items_pb2.Item()
    item.function_call_output.call_id = call_id
    item.function_call_output.output.text = text
    return item
