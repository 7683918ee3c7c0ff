"""Responses results → Chat Completions JSON (pure): the unary `chat.completion` and the stream's
`chat.completion.chunk`s, with reasoning as `reasoning_content` the way DeepSeek and vLLM send it."""

from __future__ import annotations

from typing import Any

from responses_gateway import codec
from responses_gateway.contract import events as ev
from responses_gateway.v1 import events_pb2, items_pb2, response_pb2

_STATUS = response_pb2


def _finish_reason(response: response_pb2.Response, saw_tool_call: bool) -> str:
    if response.status == _STATUS.RESPONSE_STATUS_INCOMPLETE:
        reason = response.incomplete_details.reason
        return "content_filter" if reason == _STATUS.INCOMPLETE_REASON_CONTENT_FILTER else "length"
    return "tool_calls" if saw_tool_call else "stop"


def chat_usage(response: response_pb2.Response) -> dict[str, Any] | None:
    if not response.HasField("usage"):
        return None
    u = response.usage
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.input_tokens_details.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.output_tokens_details.reasoning_tokens},
    }


def _custom_call(call_id: str, name: str, text: str) -> dict[str, Any]:
    """A custom (free-form) tool call in Chat's own shape: the model's raw input, not JSON arguments."""
    return {"id": call_id, "type": "custom", "custom": {"name": name, "input": text}}


def _function_name(item: dict[str, Any]) -> str:
    """Chat has no namespaces: a namespace's function is named `namespace.name` (read back so by
    chat_api/request.py), as the Responses API's own examples print it."""
    name = str(item.get("name", ""))
    return f"{item['namespace']}.{name}" if item.get("namespace") else name


def url_citations(parts: list[dict[str, Any]], offset: int) -> list[dict[str, Any]]:
    """Responses' `url_citation` annotations of output_text parts → Chat's message annotations, their
    indices moved by `offset` and each part's place in the joined content."""
    out: list[dict[str, Any]] = []
    for part in parts:
        if part.get("type") != "output_text":
            continue
        for a in part.get("annotations") or []:
            if a.get("type") == "url_citation":
                cite = {k: a.get(k) for k in ("url", "title")}
                cite["start_index"] = int(a.get("start_index") or 0) + offset
                cite["end_index"] = int(a.get("end_index") or 0) + offset
                out.append({"type": "url_citation", "url_citation": cite})
        offset += len(part.get("text", ""))
    return out


def chat_completion(response: response_pb2.Response) -> dict[str, Any]:
    text: list[str] = []
    refusal: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for item in codec.to_json(response).get("output", []):
        kind = item.get("type")
        if kind == "message":
            parts = item.get("content") or []
            annotations.extend(url_citations(parts, sum(map(len, text))))
            for part in parts:
                if part.get("type") == "output_text":
                    text.append(part.get("text", ""))
                elif part.get("type") == "refusal":
                    refusal.append(part.get("refusal", ""))
        elif kind == "function_call":
            calls.append(
                {
                    "id": item.get("call_id", ""),
                    "type": "function",
                    "function": {"name": _function_name(item), "arguments": item.get("arguments", "")},
                }
            )
        elif kind == "custom_tool_call":
            calls.append(_custom_call(item.get("call_id", ""), item.get("name", ""), item.get("input", "")))
        elif kind == "reasoning":
            reasoning.extend(p.get("text", "") for p in item.get("summary") or [])
            reasoning.extend(p.get("text", "") for p in item.get("content") or [])
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(text) if text or not calls else None,
        "refusal": "".join(refusal) or None,
    }
    if calls:
        message["tool_calls"] = calls
    if annotations:
        message["annotations"] = annotations
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    out: dict[str, Any] = {
        "id": f"chatcmpl-{response.id}",
        "object": "chat.completion",
        "created": response.created_at,
        "model": response.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(response, bool(calls)),
            }
        ],
    }
    usage = chat_usage(response)
    if usage is not None:
        out["usage"] = usage
    return out


class ChunkWriter:
    """Turns one Responses event stream into chat chunks."""

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage
        self._head: dict[str, Any] = {}
        self._calls: dict[str, int] = {}  # function / custom call item id → tool_calls index
        self._text_len = 0  # characters of content sent so far (annotation offsets count from it)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        chunk = {
            **self._head,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def event(self, event: events_pb2.ResponseStreamEvent) -> list[dict[str, Any]]:
        tag = ev.event_type(event)
        response = ev.response_of(event)
        if tag == ev.CREATED and response is not None:
            self._head = {
                "id": f"chatcmpl-{response.id}",
                "object": "chat.completion.chunk",
                "created": response.created_at,
                "model": response.model,
            }
            return [self._chunk({"role": "assistant", "content": ""})]
        if tag in ev.TERMINAL and response is not None:
            if tag == ev.FAILED:
                return [
                    {
                        "error": {
                            "message": response.error.message,
                            "type": "server_error",
                            "code": "server_error",
                        }
                    }
                ]
            out = [self._chunk({}, _finish_reason(response, bool(self._calls)))]
            usage = chat_usage(response)
            if self.include_usage and usage is not None:
                out.append({**self._head, "choices": [], "usage": usage})
            return out
        body = getattr(event, event.WhichOneof("kind") or "unknown")
        if tag == "response.output_text.delta":
            self._text_len += len(body.delta)
            return [self._chunk({"content": body.delta})]
        if tag == "response.refusal.delta":
            return [self._chunk({"refusal": body.delta})]
        if tag in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return [self._chunk({"reasoning_content": body.delta})]
        if tag == ev.ITEM_ADDED and body.item.WhichOneof("kind") == "function_call":
            fc = body.item.function_call
            index = self._calls[fc.id] = len(self._calls)
            call = {
                "index": index,
                "id": fc.call_id,
                "type": "function",
                "function": {
                    "name": f"{fc.namespace}.{fc.name}"
                    if fc.HasField("namespace") and fc.namespace
                    else fc.name,
                    "arguments": "",
                },
            }
            return [self._chunk({"tool_calls": [call]})]
        if tag == ev.ITEM_DONE:
            return self._item_done(body.item)
        if tag == "response.function_call_arguments.delta" and body.item_id in self._calls:
            call = {"index": self._calls[body.item_id], "function": {"arguments": body.delta}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _item_done(self, item: items_pb2.Item) -> list[dict[str, Any]]:
        """A custom call goes out whole once its input is complete (Chat streams no partial custom
        input); a finished message's web citations as one `annotations` delta."""
        kind = item.WhichOneof("kind")
        if kind == "custom_tool_call":
            c = item.custom_tool_call
            index = self._calls[c.id or c.call_id] = len(self._calls)
            return [
                self._chunk({"tool_calls": [{"index": index, **_custom_call(c.call_id, c.name, c.input)}]})
            ]
        if kind == "message":
            parts = codec.to_json(item).get("content") or []
            if isinstance(parts, list):
                start = self._text_len - sum(len(p.get("text", "")) for p in parts if isinstance(p, dict))
                cites = url_citations(parts, start)
                if cites:
                    return [self._chunk({"annotations": cites})]
        return []
