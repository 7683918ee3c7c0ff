"""Gemini `streamGenerateContent` chunks → Responses events (pure; one instance per stream).

Thought parts become a reasoning item's summary; a part's `thoughtSignature` becomes a reasoning
item's `encrypted_content` (so the next turn can hand it back); function calls arrive whole and are
emitted as one argument delta each. Safety blocks end the response `incomplete` (content_filter); a
blocked prompt also says so in a refusal.
"""

from __future__ import annotations

from typing import Any

import orjson

from responses_gateway.contract import events as ev
from responses_gateway.contract.ids import new_id
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.gemini.hosted import Grounding
from responses_gateway.providers.stream_builder import StreamBuilder
from responses_gateway.providers.tool_mapping import ToolMap
from responses_gateway.v1 import events_pb2, response_pb2

Event = events_pb2.ResponseStreamEvent

_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"}


def usage_of(u: dict[str, Any]) -> response_pb2.Usage:
    thoughts = int(u.get("thoughtsTokenCount") or 0)
    usage = response_pb2.Usage(
        input_tokens=int(u.get("promptTokenCount") or 0),
        output_tokens=int(u.get("candidatesTokenCount") or 0) + thoughts,
    )
    usage.total_tokens = int(u.get("totalTokenCount") or usage.input_tokens + usage.output_tokens)
    usage.input_tokens_details.cached_tokens = int(u.get("cachedContentTokenCount") or 0)
    usage.output_tokens_details.reasoning_tokens = thoughts
    return usage


class GeminiStream:
    def __init__(self, provider: str, tools: ToolMap | None = None) -> None:
        self.provider = provider
        self.builder = StreamBuilder(tools)
        self._reasoning: str | None = None
        self._text: str | None = None
        self.finish_reason: str | None = None
        self.blocked: str | None = None
        self.usage: response_pb2.Usage | None = None
        # The model version that answered (each chunk's `modelVersion`): the Response's `model` by the
        # gateway's rule, as OpenAI's snapshot is.
        self.model: str | None = None
        self.grounding = Grounding(self.builder)  # Google Search results (providers/gemini/hosted.py)

    def start(self) -> list[Event]:
        return list(self.builder.start())

    def chunk(self, data: dict[str, Any]) -> list[Event]:
        if isinstance(data.get("error"), dict):
            raise GatewayError(
                Reason.UPSTREAM_ERROR,
                f"{self.provider} reported an error mid-stream: {data['error'].get('message')}",
            )
        if isinstance(data.get("modelVersion"), str) and data["modelVersion"]:
            self.model = data["modelVersion"]
        if isinstance(data.get("usageMetadata"), dict):
            self.usage = usage_of(data["usageMetadata"])
        feedback = data.get("promptFeedback") or {}
        if feedback.get("blockReason"):
            self.blocked = str(feedback["blockReason"])
        out: list[Event] = []
        candidates = data.get("candidates") or []
        if candidates:
            candidate = candidates[0]
            self.grounding.candidate(candidate)
            for part in (candidate.get("content") or {}).get("parts") or []:
                out.extend(self._part(part))
            if candidate.get("finishReason"):
                self.finish_reason = str(candidate["finishReason"])
        return out

    def _close(self, item_id: str | None) -> list[Event]:
        return list(self.builder.close(item_id)) if item_id and self.builder.is_open(item_id) else []

    def _part(self, part: dict[str, Any]) -> list[Event]:
        b = self.builder
        out: list[Event] = []
        signature = part.get("thoughtSignature")
        if part.get("thought"):
            if not b.is_open(self._reasoning):
                out.extend(self._close(self._text))
                self._reasoning, opened = b.open_reasoning()
                out.extend(opened)
            assert self._reasoning is not None
            if signature:
                b.set_encrypted_content(self._reasoning, signature)
            if part.get("text"):
                out.extend(b.summary_delta(self._reasoning, part["text"]))
            return out
        if signature:
            # The signature seals the thinking before this part: keep it on a reasoning item.
            if not b.is_open(self._reasoning):
                self._reasoning, opened = b.open_reasoning()
                out.extend(opened)
            assert self._reasoning is not None
            b.set_encrypted_content(self._reasoning, signature)
        out.extend(self._close(self._reasoning))
        if isinstance(part.get("text"), str) and part["text"]:
            if not b.is_open(self._text):
                self._text, opened = b.open_text()
                out.extend(opened)
            assert self._text is not None
            out.append(b.text_delta(self._text, part["text"]))
        elif isinstance(part.get("functionCall"), dict):
            out.extend(self._close(self._text))
            call = part["functionCall"]
            call_id = str(call.get("id") or new_id("call_gw"))
            item_id, opened = b.open_call(call_id, str(call.get("name", "")))
            if item_id is None:
                return out  # past the turn's limit (parallel_tool_calls false: the first call only)
            out.extend(opened)
            out.extend(b.call_delta(item_id, orjson.dumps(call.get("args") or {}).decode()))
            out.extend(b.close(item_id))
        return out

    def end(self) -> list[Event]:
        b = self.builder
        out: list[Event] = []
        if self.blocked is not None:
            item_id, opened = b.open_text(refusal=True)
            out.extend(opened)
            out.append(b.text_delta(item_id, f"The request was blocked by the provider ({self.blocked})."))
            reason: int | None = response_pb2.INCOMPLETE_REASON_CONTENT_FILTER
        elif self.finish_reason is None:
            raise GatewayError(
                Reason.UPSTREAM_UNAVAILABLE,
                f"{self.provider} ended the stream before the response was complete.",
            )
        elif self.finish_reason == "MAX_TOKENS":
            reason = response_pb2.INCOMPLETE_REASON_MAX_OUTPUT_TOKENS
        elif self.finish_reason in _FILTERED:
            reason = response_pb2.INCOMPLETE_REASON_CONTENT_FILTER
        else:
            reason = None
        out.extend(self.grounding.end(self._text))
        out.extend(b.finish(self.usage, incomplete_reason=reason))
        if self.model:
            # On the terminal event only: created / in_progress went out before the first chunk.
            for event in out:
                response = ev.response_of(event)
                if response is not None:
                    response.model = self.model
        return out
