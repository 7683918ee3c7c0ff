"""The full name of the gRPC method being served (`/responses_gateway.v1.ResponsesService/GetResponse`),
for the metrics: grpc.aio's ServicerContext does not expose it, but its interceptor (intercept.py) sees it.

grpc.aio runs the interceptors and then the handler of one call in the same task, so a context variable
set here is what that call's handler reads, and concurrent calls do not see each other's.
"""

from __future__ import annotations

from contextvars import ContextVar

# Only ever set to a method the server has a handler for, so the label set stays bounded.
CURRENT_METHOD: ContextVar[str] = ContextVar("grpc_method", default="unknown")
