"""The gateway as an MCP client, through the official `mcp` SDK: list a server's tools, call one.

Every operation opens its own session (streamable HTTP or SSE, with the target's headers), is bounded
by one time limit (connect, handshake and the request together), and turns every way it can fail into
`McpFailure` carrying the `mcp_call` error the client sees — an MCP server never hangs a response and
never raises past here. The SDK's own exceptions stay inside this module.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx2
from mcp import Client, MCPError
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, Tool

from responses_gateway.domain.tools.mcp_failure import (
    CONNECT_FAILED,
    TIMED_OUT,
    TOO_LARGE,
    McpFailure,
    protocol_failure,
)
from responses_gateway.domain.tools.mcp_policy import Target
from responses_gateway.v1 import items_pb2


def _http_failure(status: int, message: str) -> McpFailure:
    error = items_pb2.McpCallError()
    error.http_error.code = status
    error.http_error.message = message
    return McpFailure(error, message)


def _tool_failure(content: list[Any], text: str) -> McpFailure:
    error = items_pb2.McpCallError()
    error.mcp_tool_execution_error.content.list_value.SetInParent()
    for block in content:
        error.mcp_tool_execution_error.content.list_value.values.add().struct_value.update(block)
    return McpFailure(error, text or "The tool reported an error.")


def _transport(target: Target, timeout: float, max_bytes: int) -> AbstractAsyncContextManager[Any]:
    if target.transport == "sse":
        return sse_client(target.url, headers=dict(target.headers), timeout=timeout, sse_read_timeout=timeout)
    # The SDK closes a client it made itself; this one is closed with the transport's stack below.
    http = httpx2.AsyncClient(headers=dict(target.headers), timeout=httpx2.Timeout(timeout))
    return _Owned(streamable_http_client(target.url, http_client=http, max_sse_event_size=max_bytes), http)


class _Owned:
    """A transport context that closes the HTTP client it was given when it exits."""

    def __init__(self, inner: AbstractAsyncContextManager[Any], http: httpx2.AsyncClient) -> None:
        self.inner, self.http = inner, http

    async def __aenter__(self) -> Any:
        return await self.inner.__aenter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        try:
            return await self.inner.__aexit__(*exc)
        finally:
            await self.http.aclose()


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside the SDK's (anyio) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _failure(exc: BaseException, what: str) -> McpFailure:
    exc = _leaf(exc)
    if isinstance(exc, McpFailure):
        return exc
    if isinstance(exc, MCPError):
        return protocol_failure(exc.code, exc.message or f"The MCP server refused the {what}.")
    if isinstance(exc, httpx2.HTTPStatusError):
        status = exc.response.status_code
        return _http_failure(status, f"The MCP server answered the {what} with HTTP {status}.")
    if isinstance(exc, TimeoutError | httpx2.TimeoutException):
        return protocol_failure(TIMED_OUT, f"The MCP server did not answer the {what} in time.")
    if isinstance(exc, httpx2.TransportError | OSError):
        return protocol_failure(
            CONNECT_FAILED, f"The MCP server could not be reached ({type(exc).__name__})."
        )
    return protocol_failure(CONNECT_FAILED, f"The {what} failed: {type(exc).__name__}: {str(exc)[:200]}")


async def list_tools(target: Target, timeout: float, max_bytes: int) -> list[Tool]:
    """Every tool the server lists (all pages)."""
    try:
        async with asyncio.timeout(timeout):
            async with Client(_transport(target, timeout, max_bytes), cache=None) as client:
                tools: list[Tool] = []
                cursor: str | None = None
                while True:
                    page = await client.list_tools(cursor=cursor)
                    tools.extend(page.tools)
                    cursor = page.next_cursor
                    if not cursor:
                        return tools
    except asyncio.CancelledError:
        raise
    except BaseException as e:
        raise _failure(e, "tool listing") from None


async def call_tool(
    target: Target, name: str, arguments: dict[str, Any], timeout: float, max_bytes: int
) -> str:
    """The tool's output as text; McpFailure when it failed, timed out or answered too much."""
    try:
        async with asyncio.timeout(timeout):
            async with Client(_transport(target, timeout, max_bytes), cache=None) as client:
                result = await client.call_tool(name, arguments)
    except asyncio.CancelledError:
        raise
    except BaseException as e:
        raise _failure(e, "tool call") from None
    text = _text(result)
    if result.is_error:
        raise _tool_failure([b.model_dump(mode="json", exclude_none=True) for b in result.content], text)
    size = len(text.encode())
    if size > max_bytes:
        raise protocol_failure(
            TOO_LARGE,
            f"The tool's output ({size} bytes) is larger than gateway_settings.mcp.max_output_bytes "
            f"({max_bytes}).",
        )
    return text


def _text(result: CallToolResult) -> str:
    """Text blocks joined; other blocks (images, resources) as their JSON; structured content when
    there is nothing else."""
    parts = []
    for block in result.content:
        if block.type == "text":
            parts.append(block.text)
        else:
            parts.append(json.dumps(block.model_dump(mode="json", exclude_none=True)))
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content))
    return "\n".join(parts)
