"""Checks the `authorization` metadata of every call but the health and reflection services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc

from responses_gateway.auth import CURRENT_PRINCIPAL, Authenticator
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.telemetry import metrics
from responses_gateway.transport.grpc.errors import abort

# Kubernetes probes and grpcurl's discovery must work without a key.
_OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# The admin service: the master key only.
_ADMIN = "/responses_gateway.v1.AdminService/"


if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler  # not subscriptable at run time


def _rejecting(handler: Handler, error: GatewayError) -> Handler:
    async def reject_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await abort(context, error)

    async def reject_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        await abort(context, error)
        yield  # pragma: no cover (abort raises)

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(reject_stream, **kwargs)
    return grpc.unary_unary_rpc_method_handler(reject_unary, **kwargs)


class CallAuth:
    """The authentication step of the server's interceptor (intercept.py)."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def check(self, handler: Handler, handler_call_details: grpc.HandlerCallDetails) -> Handler:
        """`handler` when the call may go on; else one that fails it with the reason."""
        if not self.authenticator.enabled:
            return handler
        if handler_call_details.method.startswith(_OPEN):
            return handler
        values = [v for k, v in handler_call_details.invocation_metadata or () if k == "authorization"]
        if len(values) > 1:
            # Which one would count? A proxy may check the first and the gateway the last: refuse both.
            return _rejecting(
                handler,
                GatewayError(
                    Reason.UNAUTHENTICATED,
                    f"Send one `authorization` metadata entry, not {len(values)}.",
                ),
            )
        value = values[0] if values else None
        try:
            principal = await self.authenticator.authenticate(value if isinstance(value, str) else None)
        except GatewayError as e:
            metrics.observe_error(handler_call_details.method, e)  # a method we serve: a bounded label
            return _rejecting(handler, e)
        if handler_call_details.method.startswith(_ADMIN) and not principal.master:
            error = GatewayError(Reason.PERMISSION_DENIED, "Only the master key may use the admin API.")
            metrics.observe_error(handler_call_details.method, error)
            return _rejecting(handler, error)
        # The servicer reads it in the same task (see method.py).
        CURRENT_PRINCIPAL.set(principal)
        return handler
