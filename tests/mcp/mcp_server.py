"""A real MCP server for the tests, built with the `mcp` SDK (`MCPServer`) and served on loopback over
streamable HTTP (and SSE), in a thread of its own: several tools, one slow, one failing, one read-only.

With `secret`, every request must carry `X-Api-Key: <secret>` (401 otherwise): a registered server's
header, which only the gateway's config holds. `calls` records each tool call the server ran."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SLOW_SECONDS = 30.0  # longer than any test's gateway_settings.mcp.call_timeout_seconds


@dataclass
class McpFixture:
    url: str  # the streamable HTTP endpoint (…/mcp)
    sse_url: str  # the SSE endpoint (…/sse)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    headers_seen: list[dict[str, str]] = field(default_factory=list)


def build_server(calls: list[tuple[str, dict[str, Any]]]) -> MCPServer:
    server = MCPServer("test-tools")

    @server.tool(description="Add two integers.", annotations=ToolAnnotations(readOnlyHint=True))
    def add(a: int, b: int) -> str:
        calls.append(("add", {"a": a, "b": b}))
        return str(a + b)

    @server.tool(description="Echo a text back, upper-cased.", annotations=ToolAnnotations(readOnlyHint=True))
    def shout(text: str) -> str:
        calls.append(("shout", {"text": text}))
        return text.upper()

    @server.tool(description="Delete a record (not read-only).")
    def delete_record(record_id: str) -> str:
        calls.append(("delete_record", {"record_id": record_id}))
        return f"deleted {record_id}"

    @server.tool(description="Answer after a long time.")
    async def slow(seconds: float = SLOW_SECONDS) -> str:
        calls.append(("slow", {"seconds": seconds}))
        await asyncio.sleep(seconds)
        return "finally"

    @server.tool(description="Always fails.")
    def explode(reason: str = "boom") -> str:
        calls.append(("explode", {"reason": reason}))
        raise ToolError(f"the tool exploded: {reason}")

    @server.tool(description="A very large answer.")
    def big(size: int = 200_000) -> str:
        calls.append(("big", {"size": size}))
        return "x" * size

    return server


class _Guard:
    """Checks (and records) the headers of every request before the MCP app sees it."""

    def __init__(self, app: ASGIApp, fixture: McpFixture, secret: str | None) -> None:
        self.app, self.fixture, self.secret = app, fixture, secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            self.fixture.headers_seen.append({k.lower(): v for k, v in request.headers.items()})
            if self.secret is not None and request.headers.get("x-api-key") != self.secret:
                await JSONResponse({"error": "bad key"}, status_code=401)(scope, receive, send)
                return
        await self.app(scope, receive, send)


@contextlib.contextmanager
def mcp_server(*, secret: str | None = None, sse: bool = False) -> Iterator[McpFixture]:
    """Serve the test tools on loopback; yields their URLs once they answer."""
    fixture = McpFixture(url="", sse_url="")
    server = build_server(fixture.calls)
    # The SDK refuses Host headers other than the ones listed (DNS rebinding protection): loopback.
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*"],
    )
    app = (
        server.sse_app(transport_security=security)
        if sse
        else server.streamable_http_app(transport_security=security, stateless_http=True, json_response=False)
    )
    guarded = _Guard(app, fixture, secret)
    with _serve(guarded) as base:
        fixture.url, fixture.sse_url = f"{base}/mcp", f"{base}/sse"
        yield fixture


@contextlib.contextmanager
def _serve(app: ASGIApp) -> Iterator[str]:
    """uvicorn on an ephemeral loopback port, with the lifespan on (the streamable HTTP app starts
    its session manager there), in a daemon thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="auto", loop="asyncio", http="h11")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the MCP server did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
