"""Anthropic Messages stream events → Responses events (pure; one instance per stream).

Content blocks map one to one onto output items: `text` → message, `tool_use` → function_call (its
`input_json_delta`s are the argument deltas; a custom tool's `tool_use` becomes a custom_tool_call, a
flattened namespace's its function_call with `namespace` again), `thinking` → reasoning with the thinking as its summary
and the signature as `encrypted_content` (so the next turn can send it back), `redacted_thinking` →
reasoning whose encrypted_content is the redacted data.
"""

from __future__ import annotations

from typing import Any

from responses_gateway.contract import events as ev
from responses_gateway.errors import GatewayError, Reason, upstream_status_reason
from responses_gateway.providers.anthropic.hosted import HostedBlocks
from responses_gateway.providers.stream_builder import StreamBuilder
from responses_gateway.providers.tool_mapping import ToolMap
from responses_gateway.v1 import events_pb2, response_pb2

Event = events_pb2.ResponseStreamEvent

_INCOMPLETE = {
    "max_tokens": response_pb2.INCOMPLETE_REASON_MAX_OUTPUT_TOKENS,
    "model_context_window_exceeded": response_pb2.INCOMPLETE_REASON_MAX_OUTPUT_TOKENS,
    "refusal": response_pb2.INCOMPLETE_REASON_CONTENT_FILTER,
}
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def usage_of(u: dict[str, Any]) -> response_pb2.Usage:
    """Anthropic counts cached input apart; Responses' input_tokens includes it."""
    read = int(u.get("cache_read_input_tokens") or 0)
    write = int(u.get("cache_creation_input_tokens") or 0)
    usage = response_pb2.Usage(
        input_tokens=int(u.get("input_tokens") or 0) + read + write,
        output_tokens=int(u.get("output_tokens") or 0),
    )
    usage.total_tokens = usage.input_tokens + usage.output_tokens
    usage.input_tokens_details.cached_tokens = read
    usage.input_tokens_details.cache_write_tokens = write
    usage.output_tokens_details.SetInParent()
    return usage


def error_of(
    error: dict[str, Any], provider: str, status: int | None = None, retry_after: float | None = None
) -> GatewayError:
    """Anthropic's `{"type": "error", "error": {"type", "message"}}`; the HTTP status when there was one,
    else the status its error type stands for (a mid-stream `overloaded_error` is a 529)."""
    status = status or _ERROR_STATUS.get(str(error.get("type")), 500)
    return GatewayError(
        upstream_status_reason(status),
        f"{provider} returned {error.get('type')}: {error.get('message')}",
        upstream_status=status,
        retry_after=retry_after,
    )


class AnthropicStream:
    def __init__(self, provider: str, tools: ToolMap | None = None, *, computer: bool = False) -> None:
        self.provider = provider
        self.builder = StreamBuilder(tools)
        # Web search and computer blocks (providers/anthropic/hosted.py); `computer`: the request
        # offered the computer tool, so a `tool_use` named `computer` is a computer call.
        self.hosted = HostedBlocks(self.builder, provider, computer=computer)
        self._blocks: dict[int, str] = {}  # content block index → item id
        self._kinds: dict[int, str] = {}
        self._usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self.stopped = False
        # The snapshot that answered (`message_start.message.model`, e.g. claude-sonnet-4-5-20250929):
        # the Response's `model` by the gateway's rule, as OpenAI's own snapshot is.
        self.model: str | None = None

    def start(self) -> list[Event]:
        return list(self.builder.start())

    def event(self, data: dict[str, Any]) -> list[Event]:
        kind = data.get("type")
        b = self.builder
        if kind == "message_start":
            message = data.get("message") or {}
            self._usage.update(message.get("usage") or {})
            if isinstance(message.get("model"), str) and message["model"]:
                self.model = message["model"]
        elif kind == "content_block_start":
            return self._block_start(int(data.get("index", 0)), data.get("content_block") or {})
        elif kind == "content_block_delta":
            return self._delta(int(data.get("index", 0)), data.get("delta") or {})
        elif kind == "content_block_stop":
            index = int(data.get("index", 0))
            hosted = self.hosted.stop(index)
            if hosted is not None:
                return hosted
            item_id = self._blocks.pop(index, None)
            if b.is_open(item_id):
                assert item_id is not None
                return [*self.hosted.annotate(index, item_id), *b.close(item_id)]
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            if delta.get("stop_reason"):
                self.stop_reason = delta["stop_reason"]
            self._usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            raise error_of(data.get("error") or {}, self.provider)
        return []

    def _block_start(self, index: int, block: dict[str, Any]) -> list[Event]:
        b = self.builder
        btype = block.get("type")
        self._kinds[index] = str(btype)
        if self.hosted.claims(block):
            return self.hosted.start(index, block)
        if btype == "text":
            item_id, out = b.open_text()
            if block.get("text"):
                out.append(b.text_delta(item_id, block["text"]))
        elif btype == "tool_use":
            call_id, out = b.open_call(str(block.get("id", "")), str(block.get("name", "")))
            if call_id is None:
                return []  # a call past the turn's limit: its deltas find no block and are skipped
            item_id = call_id
        elif btype in ("thinking", "redacted_thinking"):
            item_id, out = b.open_reasoning()
            if btype == "redacted_thinking":
                b.set_encrypted_content(item_id, "redacted:" + str(block.get("data", "")))
            elif block.get("signature"):
                b.set_encrypted_content(item_id, block["signature"])
        else:
            return []  # server tool blocks and the like have no Responses item here
        self._blocks[index] = item_id
        return out

    def _delta(self, index: int, delta: dict[str, Any]) -> list[Event]:
        if self.hosted.delta(index, delta):
            return []
        if delta.get("type") == "citations_delta":
            self.hosted.citation(index, delta.get("citation") or {})
            return []
        item_id = self._blocks.get(index)
        if item_id is None:
            return []
        b = self.builder
        dtype = delta.get("type")
        if dtype == "text_delta" and delta.get("text"):
            return [b.text_delta(item_id, delta["text"])]
        if dtype == "input_json_delta" and delta.get("partial_json"):
            return b.call_delta(item_id, delta["partial_json"])
        if dtype == "thinking_delta" and delta.get("thinking"):
            return b.summary_delta(item_id, delta["thinking"])
        if dtype == "signature_delta" and delta.get("signature"):
            b.set_encrypted_content(item_id, delta["signature"])
        return []

    def end(self) -> list[Event]:
        if not self.stopped:
            raise GatewayError(
                Reason.UPSTREAM_UNAVAILABLE, f"{self.provider} ended the stream before `message_stop`."
            )
        reason = _INCOMPLETE.get(self.stop_reason or "")
        events = list(self.builder.finish(usage_of(self._usage), incomplete_reason=reason))
        return _with_model(events, self.model)


def _with_model(events: list[Event], model: str | None) -> list[Event]:
    """The terminal event's Response names the snapshot the upstream reported (when it did). The
    created / in_progress events went out before the upstream's first event, with the deployment's
    model; the terminal one is what the fold, the store and GET return."""
    if model:
        for event in events:
            response = ev.response_of(event)
            if response is not None:
                response.model = model
    return events
