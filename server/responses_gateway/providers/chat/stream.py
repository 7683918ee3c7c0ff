"""Chat Completions chunks → Responses events (pure; one instance per stream).

Reasoning (`reasoning_content`, or `reasoning` as some servers spell it) becomes a reasoning item with
a `reasoning_text` part, content a message, refusals a refusal part, and each streamed tool call a
function_call item whose arguments stream as their own deltas. finish_reason decides the ending.
"""

from __future__ import annotations

from typing import Any

from responses_gateway.contract import events as ev
from responses_gateway.errors import GatewayError, Reason, upstream_status_reason
from responses_gateway.providers.stream_builder import StreamBuilder
from responses_gateway.providers.tool_mapping import ToolMap
from responses_gateway.v1 import content_pb2, events_pb2, response_pb2

Event = events_pb2.ResponseStreamEvent

_INCOMPLETE = {
    "length": response_pb2.INCOMPLETE_REASON_MAX_OUTPUT_TOKENS,
    "content_filter": response_pb2.INCOMPLETE_REASON_CONTENT_FILTER,
}


def usage_of(u: dict[str, Any]) -> response_pb2.Usage:
    usage = response_pb2.Usage(
        input_tokens=int(u.get("prompt_tokens") or 0),
        output_tokens=int(u.get("completion_tokens") or 0),
    )
    usage.total_tokens = int(u.get("total_tokens") or usage.input_tokens + usage.output_tokens)
    prompt = u.get("prompt_tokens_details") or {}
    usage.input_tokens_details.cached_tokens = int(prompt.get("cached_tokens") or 0)
    completion = u.get("completion_tokens_details") or {}
    usage.output_tokens_details.reasoning_tokens = int(completion.get("reasoning_tokens") or 0)
    return usage


def _logprobs(event: Event, entries: list[dict[str, Any]]) -> None:
    body = event.response_output_text_delta
    for entry in entries:
        lp: content_pb2.EventLogProb = body.logprobs.add(
            token=entry.get("token", ""), logprob=entry.get("logprob", 0.0)
        )
        for top in entry.get("top_logprobs") or []:
            lp.top_logprobs.add(token=top.get("token", ""), logprob=top.get("logprob", 0.0))


class ChatStream:
    def __init__(self, provider: str, tools: ToolMap | None = None) -> None:
        self.provider = provider
        self.builder = StreamBuilder(tools)
        self._reasoning: str | None = None
        self._text: str | None = None
        self._refusal: str | None = None
        self._calls: dict[int, str | None] = {}  # tool call index → item id (None: past the limit)
        self.finish_reason: str | None = None
        self.usage: response_pb2.Usage | None = None
        # The model each chunk names (OpenAI's snapshot; a server's served model name): the Response's
        # `model` by the gateway's rule.
        self.model: str | None = None

    def start(self) -> list[Event]:
        return list(self.builder.start())

    def _close(self, item_id: str | None) -> list[Event]:
        return list(self.builder.close(item_id)) if self.builder.is_open(item_id) and item_id else []

    def chunk(self, data: dict[str, Any]) -> list[Event]:
        if isinstance(data.get("error"), dict):
            err = data["error"]
            status = err.get("code") if isinstance(err.get("code"), int) else 500
            raise GatewayError(
                upstream_status_reason(status),
                f"{self.provider} reported an error mid-stream: {err.get('message')}",
            )
        if isinstance(data.get("usage"), dict):
            self.usage = usage_of(data["usage"])
        if isinstance(data.get("model"), str) and data["model"]:
            self.model = data["model"]
        out: list[Event] = []
        for choice in data.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # n > 1 has no Responses equivalent; the first choice is the answer
            out.extend(self._delta(choice.get("delta") or {}, choice.get("logprobs")))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def _delta(self, delta: dict[str, Any], logprobs: Any) -> list[Event]:
        b = self.builder
        out: list[Event] = []
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            if not b.is_open(self._reasoning):
                self._reasoning, opened = b.open_reasoning()
                out.extend(opened)
            assert self._reasoning is not None
            out.extend(b.reasoning_text_delta(self._reasoning, reasoning))
        for key, refusal in (("content", False), ("refusal", True)):
            text = delta.get(key)
            if not isinstance(text, str) or not text:
                continue
            out.extend(self._close(self._reasoning))
            current = self._refusal if refusal else self._text
            if not b.is_open(current):
                current, opened = b.open_text(refusal=refusal)
                out.extend(opened)
                if refusal:
                    self._refusal = current
                else:
                    self._text = current
            assert current is not None
            event = b.text_delta(current, text)
            if not refusal and isinstance(logprobs, dict) and logprobs.get("content"):
                _logprobs(event, logprobs["content"])
            out.append(event)
        for call in delta.get("tool_calls") or []:
            out.extend(self._close(self._reasoning) + self._close(self._text))
            index = int(call.get("index", 0))
            fn = call.get("function") or {}
            if index not in self._calls:
                item_id, opened = b.open_call(call.get("id") or f"call_{index}", fn.get("name") or "")
                self._calls[index] = item_id
                out.extend(opened)
            args = fn.get("arguments")
            current = self._calls[index]
            if isinstance(args, str) and args and current is not None:
                out.extend(b.call_delta(current, args))
        return out

    def end(self) -> list[Event]:
        if self.finish_reason is None:
            raise GatewayError(
                Reason.UPSTREAM_UNAVAILABLE,
                f"{self.provider} ended the stream before the response was complete.",
            )
        out = list(self.builder.finish(self.usage, incomplete_reason=_INCOMPLETE.get(self.finish_reason)))
        if self.model:
            # On the terminal event only: created / in_progress went out before the first chunk.
            for event in out:
                response = ev.response_of(event)
                if response is not None:
                    response.model = self.model
        return out
