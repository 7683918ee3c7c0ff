"""The floor of the c=1 added-latency line: the least any Python proxy can do, on the gateway's CPU.

A raw asyncio HTTP/1.1 forwarder: each client connection gets one kept-alive upstream connection; a
request (head + Content-Length body) is passed on unchanged and the reply passed back unchanged. No
parsing beyond the framing, no JSON, no store. What it adds over the direct call at c=1 is what the
extra hop costs on this machine (two more processes woken on other CPUs per request, loopback
twice), so the gateway's own share of its `+p50` is what it adds beyond this. Unary only: a chunked
(streamed) reply is not framed here.

Run alone: `python -m bench.floor_proxy --upstream-port P --port 0` (prints `listening on HOST:PORT`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

_LENGTH = b"content-length:"


async def _message(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[: len(_LENGTH)].lower() == _LENGTH:
            length = int(line[len(_LENGTH) :])
    return head + (await reader.readexactly(length) if length else b"")


async def _relay(upstream_port: int, client: asyncio.StreamReader, back: asyncio.StreamWriter) -> None:
    up, forward = await asyncio.open_connection("127.0.0.1", upstream_port)
    try:
        while True:
            forward.write(await _message(client))
            back.write(await _message(up))
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass  # a client that went away, or framing this floor does not do: the connection ends
    finally:
        forward.close()
        back.close()


async def serve(upstream_port: int, port: int) -> None:
    server = await asyncio.start_server(lambda r, w: _relay(upstream_port, r, w), "127.0.0.1", port)
    host, bound = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.floor_proxy", description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream-port", type=int, required=True)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.upstream_port, args.port))


if __name__ == "__main__":
    main()
