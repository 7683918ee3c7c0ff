"""The full name of the gRPC method being served (`/responses_gateway.v1.ResponsesService/GetResponse`),
for the metrics: grpc.aio's ServicerContext does not expose it, but its interceptors see it.

grpc.aio runs the interceptors and then the handler of one call in the same task, so a context variable
set here is what that call's handler reads, and concurrent calls do not see each other's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler  # not subscriptable at run time

# Only ever set to a method the server has a handler for, so the label set stays bounded.
CURRENT_METHOD: ContextVar[str] = ContextVar("grpc_method", default="unknown")


class MethodInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is not None:
            CURRENT_METHOD.set(handler_call_details.method)
        return handler
