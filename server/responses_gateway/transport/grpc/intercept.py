"""The server's one interceptor: the method's name for the metrics, the request intake, then
authentication (an unauthenticated caller learns nothing about its message, not even whether it parses).

One interceptor rather than a chain of three: grpc.aio runs each as a coroutine of its own on every
call. The intake's wrapped handler is made once per method, not per call (a server's handlers do not
change while it runs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

from responses_gateway.auth import Authenticator
from responses_gateway.transport.grpc.auth import CallAuth, Handler
from responses_gateway.transport.grpc.intake import with_intake
from responses_gateway.transport.grpc.method import CURRENT_METADATA, CURRENT_METHOD


class CallInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, authenticator: Authenticator) -> None:
        self.auth = CallAuth(authenticator)
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}  # method -> (grpcio's, ours)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        # Only ever a method the server has a handler for, so the label set stays bounded.
        CURRENT_METHOD.set(method)
        CURRENT_METADATA.set(handler_call_details.invocation_metadata or ())
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = self._wrapped[method] = (handler, with_intake(method, handler))
        return await self.auth.check(cached[1], handler_call_details)
