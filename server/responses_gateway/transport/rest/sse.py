"""Server-Sent Events framing as OpenAI writes it: `event: <type>` and one `data:` line per event."""

from __future__ import annotations

import orjson

from responses_gateway import codec
from responses_gateway.chat_api.response import ChunkWriter
from responses_gateway.errors import GatewayError
from responses_gateway.v1 import events_pb2

DONE = b"data: [DONE]\n\n"


def frame(event: events_pb2.ResponseStreamEvent) -> bytes:
    """One whole frame, written to the socket in a single send (built in one allocation: `+` would
    copy the event's JSON once per piece)."""
    body = codec.to_json(event)
    kind = body.get("type", "") if isinstance(body, dict) else ""
    return b"event: %b\ndata: %b\n\n" % (kind.encode(), orjson.dumps(body))


def error_frame(error: GatewayError, sequence_number: int) -> bytes:
    """An `error` event for a failure the domain could not turn into `response.failed`, numbered after
    the last event sent. Both specs' shapes at once: OpenAI's `code` / `message` / `param` at the top,
    Open Responses' `error` object (the same fields and the error's `type`)."""
    payload = error.openai_body()["error"]
    body = {
        "type": "error",
        "sequence_number": sequence_number,
        "code": payload["code"],
        "message": payload["message"],
        "param": payload["param"],
        "error": payload,
    }
    return b"event: error\ndata: %b\n\n" % orjson.dumps(body)


def chat_frames(writer: ChunkWriter, event: events_pb2.ResponseStreamEvent) -> bytes:
    """Chat Completions framing: `data:` lines only, one per chunk."""
    return b"".join([b"data: %b\n\n" % orjson.dumps(chunk) for chunk in writer.event(event)])
