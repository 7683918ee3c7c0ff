"""The OpenAI fake's hand-written ASGI responses: the SSE stream (with its scripted mid-stream
disconnect and stall), an upstream that never answers, and a non-streaming body cut off mid-way.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.responses import Response


class UpstreamDisconnect(Exception):
    """Raised inside the ASGI app to make uvicorn abort the connection mid-response."""


def _not_a_scripted_disconnect(record: logging.LogRecord) -> bool:
    exc = record.exc_info[1] if record.exc_info else None
    while exc is not None:
        if isinstance(exc, UpstreamDisconnect):
            return False
        exc = exc.__cause__ or exc.__context__ or next(iter(getattr(exc, "exceptions", ())), None)
    return True


logging.getLogger("uvicorn.error").addFilter(_not_a_scripted_disconnect)


class _SSEResponse(Response):
    """``event: <type>\\ndata: <compact json>\\n\\n`` frames, each sent (and flushed) on its own; on
    ``disconnect`` the app raises after the last frame so uvicorn aborts the connection without the final
    chunk (the client sees a protocol error, not a clean end of stream)."""

    def __init__(
        self,
        events: list[dict[str, Any]],
        delay: float,
        disconnect: bool,
        headers: dict[str, str],
        stall: bool = False,
    ):
        super().__init__(headers=headers)
        self.stall = stall
        self.raw_headers = [
            (k.encode(), v.encode())
            for k, v in {
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                **headers,
            }.items()
        ]
        self.events, self.delay, self.disconnect = events, delay, disconnect

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        for event in self.events:
            if self.delay:
                await asyncio.sleep(self.delay)
            data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
            frame = f"event: {event['type']}\ndata: {data}\n\n".encode()
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        if self.stall:
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        if self.disconnect:
            await asyncio.sleep(0.05)  # let the frames reach the socket before the abort
            raise UpstreamDisconnect("scripted mid-stream disconnect")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _StalledResponse(Response):
    """Nothing at all, until the client hangs up (an upstream that never answers)."""

    async def __call__(self, scope, receive, send) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass


class _DroppedResponse(Response):
    """Headers and a fragment of a JSON body, then the connection is aborted (non-streaming disconnect)."""

    async def __call__(self, scope, receive, send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"2048")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"id":"resp_', "more_body": True})
        await asyncio.sleep(0.05)
        raise UpstreamDisconnect("scripted disconnect")
