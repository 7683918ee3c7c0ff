"""Shaping a recorded transcript into the answer to one request: fresh ids, the request's values
reflected into the response object as OpenAI echoes them, the input items OpenAI lists, and a
deterministic token count."""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Iterator
from typing import Any

# Aliases resolve to the dated snapshot OpenAI reports in `model`; other known models are echoed.
MODEL_SNAPSHOTS = {
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "o3": "o3-2025-04-16",
    "o4-mini": "o4-mini-2025-04-16",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
}
# Fields copied verbatim from the request into the response object when present.
ECHOED = (
    "background",
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "parallel_tool_calls",
    "previous_response_id",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "store",
    "temperature",
    "top_logprobs",
    "top_p",
    "truncation",
    "user",
)
_ID_KEYS = ("id", "item_id", "call_id")
_ID_RE = re.compile(r"^([a-z]+)_([0-9a-zA-Z]+)$")


def _new_id(prefix: str, suffix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}{suffix}"


def _walk(node: Any, fn) -> Any:
    """Call ``fn`` on every dict in ``node`` (depth first, parents before children)."""
    if isinstance(node, dict):
        fn(node)
        for value in node.values():
            _walk(value, fn)
    elif isinstance(node, list):
        for value in node:
            _walk(value, fn)
    return node


def _remap_ids(doc: Any, suffix: str) -> Any:
    """Give every resp_/msg_/fc_/rs_/call_ id a fresh value, consistently across the transcript."""
    mapping: dict[str, str] = {}

    def fresh(node: dict[str, Any]) -> None:
        for key in _ID_KEYS:
            value = node.get(key)
            if isinstance(value, str) and (m := _ID_RE.match(value)):
                if value not in mapping:
                    mapping[value] = (
                        f"call_{secrets.token_urlsafe(18)[:24]}"
                        if m.group(1) == "call"
                        else _new_id(m.group(1), suffix)
                    )
                node[key] = mapping[value]

    return _walk(doc, fresh)


def _reflect(resp: dict[str, Any], req: dict[str, Any], created: int) -> None:
    """Patch a transcript response object with the request's values, as OpenAI echoes them."""
    model = req.get("model")
    if isinstance(model, str):
        resp["model"] = MODEL_SNAPSHOTS.get(model, model)
    resp["created_at"] = created
    if resp.get("completed_at") is not None:
        resp["completed_at"] = created + 1
    for key in ECHOED:
        if req.get(key) is not None:
            resp[key] = req[key]
    resp["metadata"] = req.get("metadata") or {}
    resp["tool_choice"] = req.get("tool_choice") or "auto"
    if "tools" in req or resp.get("tools"):  # function tools come back with description/strict filled in
        resp["tools"] = [
            {"type": "function", "description": None, "strict": True, **tool}
            if tool.get("type") == "function"
            else dict(tool)
            for tool in req.get("tools") or []
        ]
    if isinstance(req.get("reasoning"), dict):
        resp["reasoning"] = {**(resp.get("reasoning") or {}), **req["reasoning"]}
    if isinstance(req.get("text"), dict):
        text = {**(resp.get("text") or {}), **req["text"]}
        if isinstance(text.get("format"), dict) and text["format"].get("type") == "json_schema":
            text["format"] = {"description": None, **text["format"]}
        resp["text"] = text


def _input_items(req: dict[str, Any], suffix: str) -> list[dict[str, Any]]:
    """The request's input as OpenAI lists it under /input_items (ids added, text content normalized)."""
    raw = req.get("input")
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])
    out = []
    for item in items:
        item = copy.deepcopy(item) if isinstance(item, dict) else {"type": "unknown"}
        if "role" in item and "type" not in item:
            item = {"type": "message", **item}
        if item.get("type") == "message":
            if isinstance(item.get("content"), str):
                kind = "output_text" if item.get("role") == "assistant" else "input_text"
                extra = {"annotations": []} if kind == "output_text" else {}
                item["content"] = [{"type": kind, "text": item["content"], **extra}]
            item.setdefault("status", "completed")
        prefix = {"message": "msg", "function_call_output": "fco", "function_call": "fc", "reasoning": "rs"}
        item.setdefault("id", _new_id(prefix.get(item.get("type"), "item"), suffix))
        out.append(item)
    return out


def _count_tokens(req: dict[str, Any]) -> int:
    """Deterministic stand-in for the tokenizer: whitespace-separated words of the input's texts."""

    def strings(node: Any) -> Iterator[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, (dict, list)):
            for key, value in node.items() if isinstance(node, dict) else enumerate(node):
                if key not in ("type", "role", "id", "call_id", "status", "name"):
                    yield from strings(value)

    return sum(len(text.split()) for text in strings([req.get("input"), req.get("instructions")]))
