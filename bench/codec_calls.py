"""What the codec costs per call, measured in process (CPU time): the bench's upstream reply read and
written (the REST unary path does both), and a request carrying ten function tools (an agent's usual
request) read from the client and written for the upstream."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from responses_gateway import codec
from responses_gateway.providers.openai import translate
from responses_gateway.v1 import request_pb2, response_pb2

TRANSCRIPT = Path(__file__).resolve().parents[1] / "tests" / "transcripts" / "openai" / "text.json"
_SCHEMA = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "What to look for"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
        "filters": {"type": "array", "items": {"type": "string", "enum": ["open", "closed", "all"]}},
    },
    "required": ["query"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "name": f"tool_{i}",
        "description": "Look a thing up.",
        "parameters": _SCHEMA,
        "strict": True,
    }
    for i in range(10)
]


def _us(call: Callable[[], object], n: int) -> float:
    for _ in range(n // 10):
        call()
    started = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - started) / n * 1e6


def report(n: int = 5000) -> str:
    reply = orjson.dumps(json.loads(TRANSCRIPT.read_text())["response"])
    response = codec.loads(response_pb2.Response(), reply)
    body = orjson.dumps({"model": "m", "input": "Find the open tickets.", "tools": TOOLS})
    request = codec.loads(request_pb2.CreateResponseRequest(), body)
    return (
        f"codec per call: the {len(reply)}-byte reply read {_us(lambda: codec.loads(response_pb2.Response(), reply), n):.1f} µs,"
        f" written {_us(lambda: codec.dumps(response), n):.1f} µs; a request with {len(TOOLS)} function tools"
        f" ({len(body)} bytes) read {_us(lambda: codec.loads(request_pb2.CreateResponseRequest(), body), n):.1f} µs,"
        f" written for the upstream {_us(lambda: translate.request_body(request, 'm', stream=False), n):.1f} µs"
    )


if __name__ == "__main__":
    print(report())
