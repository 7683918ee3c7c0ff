"""A minimal, fast fake of OpenAI's `POST /v1/responses` for the benchmark.

Raw asyncio HTTP/1.1 (keep-alive, Content-Length or chunked bodies), every reply precomputed as bytes
from `tests/transcripts/openai/text.json`; only the `resp_`/`msg_` ids are made fresh per request (the
gateway stores responses by id). Unary answers are one JSON body; `"stream": true` answers are chunked
SSE: created, in_progress, output_item.added, content_part.added, N x output_text.delta,
output_text.done, content_part.done, output_item.done, completed. N is `--deltas`, or the request's
`metadata.bench_deltas`.

Run alone: `python -m bench.fast_upstream --port 0 --deltas 20` (prints `listening on HOST:PORT`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import os
from pathlib import Path
from typing import Any

import orjson

TRANSCRIPT = Path(__file__).resolve().parents[1] / "tests" / "transcripts" / "openai" / "text.json"
_ID_HEX = 48  # the transcript's ids are `resp_` / `msg_` + 48 hex digits
_RESP_MARK = b"resp_" + b"R" * _ID_HEX
_MSG_MARK = b"msg_" + b"M" * _ID_HEX
_WORDS = ("Hello", "!", " How", " can", " I", " help", " you", " today", "?")
_MAX_HEAD = 64 * 1024


def _sse(event: dict[str, Any]) -> bytes:
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Replies:
    """Precomputed reply templates; `unary()` / `stream(n)` only substitute fresh ids."""

    def __init__(self, default_deltas: int, transcript: Path = TRANSCRIPT) -> None:
        data = json.loads(transcript.read_text())
        self.default_deltas = default_deltas
        rid, mid = data["response"]["id"], data["response"]["output"][0]["id"]
        self._raw = json.dumps(data).replace(rid, _RESP_MARK.decode()).replace(mid, _MSG_MARK.decode())
        self._response = orjson.dumps(json.loads(self._raw)["response"])
        self._unary_head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nopenai-processing-ms: 1\r\n"
            b"content-length: %d\r\n\r\n" % len(self._response)
        )
        self._streams: dict[int, list[bytes]] = {}

    def stream_events(self, deltas: int) -> list[dict[str, Any]]:
        """The events of a stream of `deltas` deltas, with markers where its ids go."""
        events: list[dict[str, Any]] = json.loads(self._raw)["stream"]
        head = [e for e in events if e["type"] != "response.output_text.delta"][:4]
        tail = [e for e in events if e["type"] != "response.output_text.delta"][4:]
        template = next(e for e in events if e["type"] == "response.output_text.delta")
        words = [_WORDS[i % len(_WORDS)] for i in range(deltas)]
        text = "".join(words)
        body = [*head]
        for word in words:
            delta = copy.deepcopy(template)
            delta["delta"] = word
            body.append(delta)
        for event in tail:
            for part in (event.get("part"), *(event.get("item", {}).get("content") or [])):
                if isinstance(part, dict) and "text" in part:
                    part["text"] = text
            if "text" in event:
                event["text"] = text
            if "response" in event:
                for item in event["response"].get("output") or []:
                    for part in item.get("content") or []:
                        part["text"] = text
                usage = event["response"].get("usage")
                if usage:
                    usage["output_tokens"] = deltas
                    usage["total_tokens"] = usage["input_tokens"] + deltas
            body.append(event)
        for seq, event in enumerate(body):
            event["sequence_number"] = seq
        return body

    def _build_stream(self, deltas: int) -> list[bytes]:
        frames = [
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
        ]
        frames += [_chunk(_sse(e)) for e in self.stream_events(deltas)]
        frames.append(b"0\r\n\r\n")
        return frames

    @property
    def unary_template(self) -> bytes:
        """The unary reply's body, with markers where its ids go."""
        return self._response

    def unary(self) -> list[bytes]:
        return [self._unary_head, _fresh(self._response)]

    def stream(self, deltas: int | None) -> list[bytes]:
        n = self.default_deltas if deltas is None else deltas
        frames = self._streams.get(n)
        if frames is None:
            frames = self._streams[n] = self._build_stream(n)
        rid, mid = _ids()
        return [f.replace(_RESP_MARK, rid).replace(_MSG_MARK, mid) for f in frames]


def _ids() -> tuple[bytes, bytes]:
    return b"resp_" + os.urandom(24).hex().encode(), b"msg_" + os.urandom(24).hex().encode()


def _fresh(template: bytes) -> bytes:
    rid, mid = _ids()
    return template.replace(_RESP_MARK, rid).replace(_MSG_MARK, mid)


def _error(status: bytes, message: str) -> bytes:
    body = orjson.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None}})
    return b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        len(body),
        body,
    )


class UpstreamProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive; requests on one connection are answered in order."""

    def __init__(self, replies: Replies) -> None:
        self.replies = replies
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self._one():
            pass

    def _one(self) -> bool:
        """Answer one complete request from the buffer; False when more bytes are needed."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > _MAX_HEAD:
                self._close(_error(b"431 Request Header Fields Too Large", "headers too large"))
            return False
        head = bytes(self.buffer[:end]).decode("latin-1")
        lines = head.split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parsed = _dechunk(self.buffer, start)
            if parsed is None:
                return False
            body, stop = parsed
        else:
            stop = start + int(headers.get("content-length", "0"))
            if len(self.buffer) < stop:
                return False
            body = bytes(self.buffer[start:stop])
        del self.buffer[:stop]
        assert self.transport is not None
        self.transport.writelines(self._answer(method, path.split("?", 1)[0], body))
        if headers.get("connection", "").lower() == "close":
            self.transport.close()
            return False
        return True

    def _answer(self, method: str, path: str, body: bytes) -> list[bytes]:
        if method != "POST" or path.rstrip("/") not in ("/v1/responses", "/responses"):
            return [_error(b"404 Not Found", f"Invalid URL ({method} {path})")]
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return [_error(b"400 Bad Request", "We could not parse the JSON body of your request.")]
        if not isinstance(request, dict):
            return [_error(b"400 Bad Request", "The request body must be a JSON object.")]
        if not request.get("stream"):
            return self.replies.unary()
        deltas = (request.get("metadata") or {}).get("bench_deltas")
        return self.replies.stream(int(deltas) if deltas else None)

    def _close(self, reply: bytes) -> None:
        assert self.transport is not None
        self.transport.write(reply)
        self.transport.close()


def _dechunk(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    out = bytearray()
    pos = start
    while True:
        eol = buffer.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buffer[pos:eol]).split(b";", 1)[0], 16)
        if size == 0:
            stop = buffer.find(b"\r\n", eol + 2)
            return None if stop < 0 else (bytes(out), stop + 2)
        if len(buffer) < eol + 2 + size + 2:
            return None
        out += buffer[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


async def serve(host: str, port: int, deltas: int) -> None:
    replies = Replies(deltas)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(replies), host, port, backlog=1024)
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fast_upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--deltas", type=int, default=20, help="output_text.delta events per stream")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.deltas))


if __name__ == "__main__":
    main()
