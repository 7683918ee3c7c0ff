"""An OpenAI-compatible Responses server that answers with only the fields it must: no echoed request
parameters, no `sequence_number`s, usage without its details. Some self-hosted Responses servers write
objects this bare; the gateway must still hand its clients complete Response objects."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

TEXT = "Sparse but correct."
_ids = itertools.count(1)


def _bare(rid: str, model: str, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output,
    }
    if status == "completed":
        body["usage"] = {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
    return body


def _message(mid: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text}] if text else []
    return {"type": "message", "id": mid, "role": "assistant", "status": status, "content": content}


class SparseResponses:
    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.app = Starlette(
            routes=[
                Route("/v1/responses", self._create, methods=["POST"]),
                Route("/v1/responses/{rid}", self._get, methods=["GET"]),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    async def _create(self, request: Request) -> Response:
        req = await request.json()
        self.requests.append(req)
        n = next(_ids)
        rid, mid, model = f"resp_sparse{n:04d}", f"msg_sparse{n:04d}", str(req.get("model"))
        done = _bare(rid, model, "completed", [_message(mid, TEXT, "completed")])
        self.stored[rid] = done
        if not req.get("stream"):
            return JSONResponse(done)

        async def events() -> AsyncIterator[bytes]:
            part = {"type": "output_text", "text": ""}
            for event in (
                {"type": "response.created", "response": _bare(rid, model, "in_progress", [])},
                {"type": "response.in_progress", "response": _bare(rid, model, "in_progress", [])},
                {"type": "response.output_item.added", "output_index": 0, "item": _message(mid, "", "in_progress")},
                {"type": "response.content_part.added", "item_id": mid, "output_index": 0, "content_index": 0, "part": part},
                {"type": "response.output_text.delta", "item_id": mid, "output_index": 0, "content_index": 0, "delta": TEXT},
                {"type": "response.output_text.done", "item_id": mid, "output_index": 0, "content_index": 0, "text": TEXT},
                {"type": "response.content_part.done", "item_id": mid, "output_index": 0, "content_index": 0, "part": {**part, "text": TEXT}},
                {"type": "response.output_item.done", "output_index": 0, "item": _message(mid, TEXT, "completed")},
                {"type": "response.completed", "response": done},
            ):  # fmt: skip
                yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _get(self, request: Request) -> Response:
        body = self.stored.get(request.path_params["rid"])
        if body is None:
            return JSONResponse(
                {"error": {"message": "No such response", "type": "invalid_request_error"}}, 404
            )
        return JSONResponse(body)
