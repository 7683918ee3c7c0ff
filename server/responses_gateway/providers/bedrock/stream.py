"""Bedrock ConverseStream messages → Responses events, and Bedrock errors → GatewayErrors (pure).

A ConverseStream body is `application/vnd.amazon.eventstream`: binary messages (decoded by botocore's
parser in the adapter), each with headers and a JSON payload. `:message-type` says what it is:

- `event`, named by `:event-type`: `messageStart`, `contentBlockStart` (only tool calls have one),
  `contentBlockDelta` (`text`, `toolUse.input`, `reasoningContent.text` / `signature` /
  `redactedContent`, `citation`), `contentBlockStop`, `messageStop` (the stop reason), then `metadata`
  (usage and latency);
- `exception`, named by `:exception-type` (`throttlingException`, `modelStreamErrorException`, …),
  with `{"message": …}`: the stream failed after it started;
- `error`, with `:error-code` / `:error-message` headers: the framing layer's own failure.

Shapes: botocore's `bedrock-runtime` service model (ConverseStreamOutput and its members).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from responses_gateway.errors import GatewayError, Reason, upstream_status_reason
from responses_gateway.providers.bedrock.request import REDACTED
from responses_gateway.providers.stream_builder import StreamBuilder
from responses_gateway.providers.tool_mapping import ToolMap
from responses_gateway.v1 import events_pb2, response_pb2

Event = events_pb2.ResponseStreamEvent

_INCOMPLETE = {
    "max_tokens": response_pb2.INCOMPLETE_REASON_MAX_OUTPUT_TOKENS,
    "model_context_window_exceeded": response_pb2.INCOMPLETE_REASON_MAX_OUTPUT_TOKENS,
    "guardrail_intervened": response_pb2.INCOMPLETE_REASON_CONTENT_FILTER,
    "content_filtered": response_pb2.INCOMPLETE_REASON_CONTENT_FILTER,
}
# Stop reasons where the model's output cannot be used: the response fails, saying so.
_FAILED = {
    "malformed_model_output": "the model's output was malformed",
    "malformed_tool_use": "the model wrote a malformed tool call",
}

# Bedrock's error names (lower-cased: streams spell them `throttlingException`, HTTP answers
# `ThrottlingException`) → (the status AWS gives them, the gateway's reason). Where the status alone
# would mislead, the name decides: a model timeout is a timeout, a model not ready is unavailable.
_ERRORS: dict[str, tuple[int, Reason]] = {
    "validationexception": (400, Reason.INVALID_REQUEST),
    "conflictexception": (400, Reason.CONFLICT),
    "servicequotaexceededexception": (400, Reason.RATE_LIMITED),
    "accessdeniedexception": (403, Reason.UPSTREAM_AUTH_FAILED),
    "unrecognizedclientexception": (403, Reason.UPSTREAM_AUTH_FAILED),
    "invalidsignatureexception": (403, Reason.UPSTREAM_AUTH_FAILED),
    "expiredtokenexception": (403, Reason.UPSTREAM_AUTH_FAILED),
    "incompletesignatureexception": (403, Reason.UPSTREAM_AUTH_FAILED),
    "resourcenotfoundexception": (404, Reason.NOT_FOUND),
    "modeltimeoutexception": (408, Reason.UPSTREAM_TIMEOUT),
    "modelerrorexception": (424, Reason.UPSTREAM_ERROR),
    "modelstreamerrorexception": (424, Reason.UPSTREAM_ERROR),
    "throttlingexception": (429, Reason.RATE_LIMITED),
    "modelnotreadyexception": (429, Reason.UPSTREAM_UNAVAILABLE),
    "internalserverexception": (500, Reason.UPSTREAM_ERROR),
    "serviceunavailableexception": (503, Reason.UPSTREAM_UNAVAILABLE),
}


def error_name(header: str | None, body: Any) -> str | None:
    """The exception name of an HTTP error: `x-amzn-ErrorType` (`ThrottlingException:http://…`), else
    the body's `__type` (`com.amazon.coral…#ValidationException`)."""
    if header:
        return header.split(":", 1)[0]
    kind = body.get("__type") if isinstance(body, dict) else None
    return str(kind).rsplit("#", 1)[-1] if kind else None


def error_of(
    name: str | None,
    message: Any,
    provider: str,
    status: int | None = None,
    retry_after: float | None = None,
) -> GatewayError:
    known = _ERRORS.get((name or "").lower())
    status = status or (known[0] if known else 500)
    reason = known[1] if known else upstream_status_reason(status)
    return GatewayError(
        reason,
        f"{provider} returned {name or status}: {message}",
        upstream_status=status,
        retry_after=retry_after,
    )


def usage_of(u: Mapping[str, Any]) -> response_pb2.Usage:
    """Bedrock counts cached input apart from `inputTokens`; Responses' input_tokens includes it."""
    read = int(u.get("cacheReadInputTokens") or 0)
    write = int(u.get("cacheWriteInputTokens") or 0)
    usage = response_pb2.Usage(
        input_tokens=int(u.get("inputTokens") or 0) + read + write,
        output_tokens=int(u.get("outputTokens") or 0),
    )
    usage.total_tokens = usage.input_tokens + usage.output_tokens
    usage.input_tokens_details.cached_tokens = read
    usage.input_tokens_details.cache_write_tokens = write
    usage.output_tokens_details.SetInParent()
    return usage


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    return value.decode() if isinstance(value, bytes) else value


class BedrockStream:
    def __init__(self, provider: str, tools: ToolMap | None = None) -> None:
        self.provider = provider
        self.builder = StreamBuilder(tools)
        self._blocks: dict[int, str] = {}  # contentBlockIndex → the open item's id
        self._skipped: set[int] = set()  # tool calls past the turn's limit: their deltas are dropped
        self._usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self.stopped = False

    def start(self) -> list[Event]:
        return list(self.builder.start())

    def message(self, headers: Mapping[str, Any], payload: bytes) -> list[Event]:
        """One decoded event-stream message."""
        kind = _header(headers, ":message-type")
        if kind == "event":
            try:
                data = orjson.loads(payload) if payload else {}
            except orjson.JSONDecodeError:
                raise GatewayError(
                    Reason.UPSTREAM_ERROR,
                    f"{self.provider} sent an event that is not JSON: {payload[:200]!r}",
                ) from None
            return self.event(_header(headers, ":event-type") or "", data if isinstance(data, dict) else {})
        if kind == "exception":
            try:
                body = orjson.loads(payload) if payload else {}
            except orjson.JSONDecodeError:
                body = {"message": payload[:200].decode("utf-8", "replace")}
            message = body.get("message") if isinstance(body, dict) else body
            raise error_of(_header(headers, ":exception-type"), message, self.provider)
        if kind == "error":
            raise error_of(_header(headers, ":error-code"), _header(headers, ":error-message"), self.provider)
        return []  # a message type this protocol version does not define: nothing to relay

    def event(self, kind: str, data: dict[str, Any]) -> list[Event]:
        index = int(data.get("contentBlockIndex") or 0)
        if kind == "contentBlockStart":
            tool = (data.get("start") or {}).get("toolUse")
            if not isinstance(tool, dict):
                return []
            call_id, out = self.builder.open_call(str(tool.get("toolUseId", "")), str(tool.get("name", "")))
            if call_id is None:
                self._skipped.add(index)
            else:
                self._blocks[index] = call_id
            return out
        if kind == "contentBlockDelta":
            return self._delta(index, data.get("delta") or {})
        if kind == "contentBlockStop":
            item_id = self._blocks.pop(index, None)
            if self.builder.is_open(item_id):
                assert item_id is not None
                return list(self.builder.close(item_id))
        elif kind == "messageStop":
            self.stopped = True
            self.stop_reason = data.get("stopReason")
        elif kind == "metadata":
            self._usage = data.get("usage") or {}
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[Event]:
        if index in self._skipped:
            return []
        b = self.builder
        item_id = self._blocks.get(index)
        out: list[Event] = []
        if "text" in delta:
            if item_id is None:  # text blocks have no start event: the first delta opens one
                item_id, out = b.open_text()
                self._blocks[index] = item_id
            if delta["text"]:
                out.append(b.text_delta(item_id, delta["text"]))
        elif "toolUse" in delta and item_id is not None:
            out.extend(b.call_delta(item_id, str((delta["toolUse"] or {}).get("input") or "")))
        elif "reasoningContent" in delta:
            reasoning = delta["reasoningContent"] or {}
            if item_id is None:
                item_id, out = b.open_reasoning()
                self._blocks[index] = item_id
            if reasoning.get("text"):
                out.extend(b.summary_delta(item_id, reasoning["text"]))
            if reasoning.get("signature"):
                b.set_encrypted_content(item_id, reasoning["signature"])
            if reasoning.get("redactedContent"):
                b.set_encrypted_content(item_id, REDACTED + str(reasoning["redactedContent"]))
        return out

    def end(self) -> list[Event]:
        if not self.stopped:
            raise GatewayError(
                Reason.UPSTREAM_UNAVAILABLE, f"{self.provider} ended the stream before `messageStop`."
            )
        failed = _FAILED.get(self.stop_reason or "")
        if failed is not None and self.builder.failure is None:
            self.builder.failure = f"{self.provider} stopped: {failed} (`{self.stop_reason}`)."
        reason = _INCOMPLETE.get(self.stop_reason or "")
        return list(self.builder.finish(usage_of(self._usage), incomplete_reason=reason))
