"""Upstreams of the tool tests: the scripted Anthropic model of tests/mcp (a turn can also end with a
stop reason of the test's choosing, e.g. `max_tokens`), and an OpenAI Responses upstream that runs
tool search itself (hosted: `tool_search_call` / `tool_search_output` items, then a call of the loaded
function), for the relay on OpenAI-native deployments."""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.transcripts import dumps
from tests.mcp.models import ScriptedAnthropic


@dataclass
class StoppingAnthropic(ScriptedAnthropic):
    """`stops`: the stop reason of each next turn (a turn beyond them stops as scripted)."""

    stops: deque[str] = field(default_factory=deque)

    async def events(
        self, items: list[dict[str, Any]], frame: Callable[[dict[str, Any]], bytes]
    ) -> AsyncIterator[bytes]:
        if self.stops:
            stop = self.stops.popleft()
            for item in items:
                if item.get("event") == "message_delta":
                    item["data"]["delta"]["stop_reason"] = stop
        async for chunk in super().events(items, frame):
            yield chunk


NAMESPACE_LOADED = {
    "type": "namespace",
    "name": "crm",
    "description": "CRM tools for customer lookup and order management.",
    "tools": [
        {
            "type": "function",
            "name": "list_open_orders",
            "description": "List open orders for a customer ID.",
            "defer_loading": True,
            "parameters": {
                "type": "object",
                "properties": {"customer_id": {"type": "string"}},
                "required": ["customer_id"],
                "additionalProperties": False,
            },
            "strict": True,
        }
    ],
}


class HostedSearchOpenAI:
    """POST /v1/responses, streamed: OpenAI's hosted tool search, then the loaded function's call."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []  # the events of the last answer, as sent
        self.app = Starlette(routes=[Route("/v1/responses", self._create, methods=["POST"])])

    async def _create(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"error": {"message": "bad key", "type": "invalid_request_error"}}, 401)
        body = await request.json()
        self.requests.append(body)
        self.sent = list(self._events(body))
        frames = [f"event: {e['type']}\ndata: {dumps(e)}\n\n".encode() for e in self.sent]

        async def stream() -> AsyncIterator[bytes]:
            for f in frames:
                yield f

        return StreamingResponse(stream(), media_type="text/event-stream")

    def _events(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        rid = f"resp_{uuid.uuid4().hex}"
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
        call = {
            "type": "tool_search_call",
            "id": f"tsc_{uuid.uuid4().hex}",
            "call_id": None,
            "execution": "server",
            "arguments": {"paths": ["crm"]},
            "status": "completed",
        }
        found = {
            "type": "tool_search_output",
            "id": f"tso_{uuid.uuid4().hex}",
            "call_id": None,
            "execution": "server",
            "tools": [NAMESPACE_LOADED],
            "status": "completed",
        }
        fid = f"fc_{uuid.uuid4().hex}"
        args = json.dumps({"customer_id": "C42"})
        fc = {
            "type": "function_call",
            "id": fid,
            "call_id": f"call_{uuid.uuid4().hex[:20]}",
            "namespace": "crm",
            "name": "list_open_orders",
            "arguments": args,
            "status": "completed",
        }
        out: list[dict[str, Any]] = [
            {"type": "response.created", "response": {**base, "status": "in_progress"}},
            {"type": "response.in_progress", "response": {**base, "status": "in_progress"}},
        ]
        for n, item in enumerate((call, found)):
            out.append({"type": "response.output_item.added", "output_index": n, "item": item})
            out.append({"type": "response.output_item.done", "output_index": n, "item": item})
        out += [
            {
                "type": "response.output_item.added",
                "output_index": 2,
                "item": {**fc, "arguments": "", "status": "in_progress"},
            },
            {
                "type": "response.function_call_arguments.delta",
                "output_index": 2,
                "item_id": fid,
                "delta": args,
            },
            {
                "type": "response.function_call_arguments.done",
                "output_index": 2,
                "item_id": fid,
                "name": "list_open_orders",
                "arguments": args,
            },
            {"type": "response.output_item.done", "output_index": 2, "item": fc},
        ]
        usage = {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 15,
        }
        out.append(
            {
                "type": "response.completed",
                "response": {**base, "status": "completed", "output": [call, found, fc], "usage": usage},
            }
        )
        return [{**e, "sequence_number": i} for i, e in enumerate(out)]
