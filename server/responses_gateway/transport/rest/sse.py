"""Server-Sent Events framing as OpenAI writes it: `event: <type>` and one `data:` line per event."""

from __future__ import annotations

import orjson

from responses_gateway import codec
from responses_gateway.chat_api.response import ChunkWriter
from responses_gateway.errors import GatewayError
from responses_gateway.v1 import events_pb2

DONE = b"data: [DONE]\n\n"


def frame(event: events_pb2.ResponseStreamEvent) -> bytes:
    """One whole frame, written to the socket in a single send."""
    body = codec.to_json(event)
    kind = body.get("type", "") if isinstance(body, dict) else ""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


def error_frame(error: GatewayError) -> bytes:
    """An `error` event for a failure the domain could not turn into `response.failed`."""
    body = {"type": "error", "code": error.code, "message": error.message, "param": error.param}
    return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"


def chat_frames(writer: ChunkWriter, event: events_pb2.ResponseStreamEvent) -> bytes:
    """Chat Completions framing: `data:` lines only, one per chunk."""
    return b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in writer.event(event))
