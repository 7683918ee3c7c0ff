"""How an MCP operation failed, as the `mcp_call` item says it: apart from the client (mcp_client.py),
so the MCP loop can raise and catch these without importing the SDK until a run calls a server."""

from __future__ import annotations

from responses_gateway.v1 import items_pb2

# JSON-RPC's implementation-defined server errors: the gateway's own, for what has no code of its own.
CONNECT_FAILED = -32000
TIMED_OUT = -32001
TOO_LARGE = -32002


class McpFailure(Exception):
    """An MCP operation failed; `error` is what the `mcp_call` item says, `str(self)` the text."""

    def __init__(self, error: items_pb2.McpCallError, text: str) -> None:
        super().__init__(text)
        self.error = error


def protocol_failure(code: int, message: str) -> McpFailure:
    error = items_pb2.McpCallError()
    error.mcp_protocol_error.code = code
    error.mcp_protocol_error.message = message
    return McpFailure(error, message)
