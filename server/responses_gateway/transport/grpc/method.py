"""The full name of the gRPC method being served (`/responses_gateway.v1.ResponsesService/GetResponse`),
for the metrics: grpc.aio's ServicerContext does not expose it, but its interceptor (intercept.py) sees it.
And the call's metadata as the interceptor was handed it: `ServicerContext.invocation_metadata()` builds
a new tuple of it on every call of it (~3 µs), this one is built once per call already.

grpc.aio runs the interceptors and then the handler of one call in the same task, so a context variable
set here is what that call's handler reads, and concurrent calls do not see each other's.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

# Only ever set to a method the server has a handler for, so the label set stays bounded.
CURRENT_METHOD: ContextVar[str] = ContextVar("grpc_method", default="unknown")
# None: not set by the interceptor (a servicer called without it); the servicer asks the context.
CURRENT_METADATA: ContextVar[Sequence[tuple[str, Any]] | None] = ContextVar("grpc_metadata", default=None)
