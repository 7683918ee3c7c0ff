"""Scripted model upstreams for the MCP tests: real HTTP servers whose model calls the tools a test
scripts, turn by turn, and then answers with what the tools returned.

`ScriptedAnthropic` is the Anthropic fake (tests/fakes/anthropic_upstream.py: its request checks, its
SSE framing) with a scripted stream instead of a transcript; `ScriptedOpenAI` a Responses API
upstream that streams the same script as OpenAI would (function_call items), for the OpenAI-native
path with `mcp_execution: gateway`. A turn of the script is a list of tool calls `(name, arguments)`;
once the script is used up the model answers `RESULTS: <every tool result it saw, in order>`.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.anthropic_upstream import FakeAnthropic, Invalid, error_response, frame, validate
from tests.fakes.transcripts import dumps

Call = tuple[str, dict[str, Any]]


def _results_anthropic(body: dict[str, Any]) -> list[str]:
    out = []
    for msg in body["messages"]:
        content = msg["content"]
        for block in content if isinstance(content, list) else []:
            if block.get("type") == "tool_result":
                c = block.get("content")
                out.append(c if isinstance(c, str) else json.dumps(c))
    return out


@dataclass
class ScriptedAnthropic(FakeAnthropic):
    turns: deque[list[Call]] = field(default_factory=deque)

    def script(self, *turns: list[Call]) -> None:
        self.turns = deque(turns)

    def build_app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/messages", self._scripted, methods=["POST"])])

    async def _scripted(self, request: Request) -> Response:
        rec = await self.record(request)
        try:
            validate(rec.body)
        except Invalid as exc:
            return error_response(400, str(exc))
        body = rec.body
        offered = {t["name"] for t in body.get("tools", [])}
        calls = self.turns.popleft() if self.turns else []
        for name, _ in calls:
            if name not in offered:
                return error_response(
                    400, f"scripted model: tool {name!r} is not offered ({sorted(offered)})"
                )
        events = anthropic_stream(body["model"], calls, "RESULTS: " + " | ".join(_results_anthropic(body)))
        return StreamingResponse(self.events(events, frame), media_type="text/event-stream; charset=utf-8")


def anthropic_stream(model: str, calls: list[Call], text: str) -> list[dict[str, Any]]:
    def ev(kind: str, **data: Any) -> dict[str, Any]:
        return {"event": kind, "data": {"type": kind, **data}}

    usage = {"input_tokens": 10, "output_tokens": 1}
    out = [
        ev(
            "message_start",
            message={
                "id": f"msg_{uuid.uuid4().hex[:20]}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            },
        )
    ]
    if calls:
        for i, (name, args) in enumerate(calls):
            tid = f"toolu_{uuid.uuid4().hex[:20]}"
            out.append(
                ev(
                    "content_block_start",
                    index=i,
                    content_block={"type": "tool_use", "id": tid, "name": name, "input": {}},
                )
            )
            raw = json.dumps(args)
            half = len(raw) // 2
            for piece in (raw[:half], raw[half:]):
                out.append(
                    ev(
                        "content_block_delta",
                        index=i,
                        delta={"type": "input_json_delta", "partial_json": piece},
                    )
                )
            out.append(ev("content_block_stop", index=i))
        stop = "tool_use"
    else:
        out.append(ev("content_block_start", index=0, content_block={"type": "text", "text": ""}))
        out.append(ev("content_block_delta", index=0, delta={"type": "text_delta", "text": text}))
        out.append(ev("content_block_stop", index=0))
        stop = "end_turn"
    out.append(
        ev("message_delta", delta={"stop_reason": stop, "stop_sequence": None}, usage={"output_tokens": 5})
    )
    out.append(ev("message_stop"))
    return out


class ScriptedOpenAI:
    """POST /v1/responses (streamed) that plays the script as OpenAI's function_call events."""

    def __init__(self, api_key: str = "sk-test") -> None:
        self.api_key = api_key
        self.turns: deque[list[Call]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/v1/responses", self._create, methods=["POST"])])

    def script(self, *turns: list[Call]) -> None:
        self.turns = deque(turns)

    async def _create(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"error": {"message": "bad key", "type": "invalid_request_error"}}, 401)
        body = await request.json()
        self.requests.append(body)
        for tool in body.get("tools", []):
            if tool.get("type") != "function":
                return JSONResponse({"error": {"message": f"scripted: tool type {tool.get('type')}"}}, 400)
        if not body.get("stream"):
            return JSONResponse({"error": {"message": "scripted: stream only"}}, 400)
        offered = {t["name"] for t in body.get("tools", [])}
        calls = self.turns.popleft() if self.turns else []
        for name, _ in calls:
            if name not in offered:
                return JSONResponse({"error": {"message": f"scripted: {name} not offered"}}, 400)
        items = body.get("input") if isinstance(body.get("input"), list) else []
        results = [i["output"] for i in items if i.get("type") == "function_call_output"]
        text = "RESULTS: " + " | ".join(r if isinstance(r, str) else json.dumps(r) for r in results)
        return StreamingResponse(self._events(body, calls, text), media_type="text/event-stream")

    async def _events(self, body: dict[str, Any], calls: list[Call], text: str) -> AsyncIterator[bytes]:
        rid = f"resp_{uuid.uuid4().hex}"
        seq = iter(range(10_000))
        base = {
            "id": rid,
            "object": "response",
            "created_at": 1_700_000_000,
            "model": body["model"],
            "output": [],
            "tools": body.get("tools", []),
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "metadata": {},
            "temperature": 1.0,
            "top_p": 1.0,
        }

        def sse(kind: str, **data: Any) -> bytes:
            return f"event: {kind}\ndata: {dumps({'type': kind, 'sequence_number': next(seq), **data})}\n\n".encode()

        yield sse("response.created", response={**base, "status": "in_progress"})
        yield sse("response.in_progress", response={**base, "status": "in_progress"})
        output = []
        if calls:
            for n, (name, args) in enumerate(calls):
                fid, cid = f"fc_{uuid.uuid4().hex}", f"call_{uuid.uuid4().hex[:20]}"
                raw = json.dumps(args)
                item = {
                    "type": "function_call",
                    "id": fid,
                    "call_id": cid,
                    "name": name,
                    "arguments": "",
                    "status": "in_progress",
                }
                yield sse("response.output_item.added", output_index=n, item=item)
                yield sse("response.function_call_arguments.delta", output_index=n, item_id=fid, delta=raw)
                yield sse("response.function_call_arguments.done", output_index=n, item_id=fid, arguments=raw)
                done = {**item, "arguments": raw, "status": "completed"}
                yield sse("response.output_item.done", output_index=n, item=done)
                output.append(done)
        else:
            mid = f"msg_{uuid.uuid4().hex}"
            part = {"type": "output_text", "text": "", "annotations": []}
            msg = {"type": "message", "id": mid, "role": "assistant", "status": "in_progress", "content": []}
            yield sse("response.output_item.added", output_index=0, item=msg)
            yield sse("response.content_part.added", output_index=0, item_id=mid, content_index=0, part=part)
            yield sse(
                "response.output_text.delta",
                output_index=0,
                item_id=mid,
                content_index=0,
                delta=text,
                logprobs=[],
            )
            yield sse(
                "response.output_text.done",
                output_index=0,
                item_id=mid,
                content_index=0,
                text=text,
                logprobs=[],
            )
            full = {**part, "text": text}
            yield sse("response.content_part.done", output_index=0, item_id=mid, content_index=0, part=full)
            done = {**msg, "status": "completed", "content": [full]}
            yield sse("response.output_item.done", output_index=0, item=done)
            output.append(done)
        usage = {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 15,
        }
        yield sse(
            "response.completed", response={**base, "status": "completed", "output": output, "usage": usage}
        )
