"""Request intake for every unary-request method: bytes that are not the method's message, and messages
nested deeper than the contract stores, are the client's error (INVALID_ARGUMENT with an ErrorInfo).

grpcio answers UNKNOWN when a request deserializer raises, so the deserializer never does here: it
hands the method a `_Refused` instead, and the wrapped method aborts with the domain error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from responses_gateway import codec
from responses_gateway.codec.values import TOO_DEEP
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.telemetry import metrics
from responses_gateway.transport.grpc.auth import Handler
from responses_gateway.transport.grpc.errors import abort

Context = grpc.aio.ServicerContext[Any, Any]


class _Refused:
    __slots__ = ("error",)

    def __init__(self, error: GatewayError) -> None:
        self.error = error


def _deserializer(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(raw: bytes) -> Any:
        try:
            message = parse(raw)
        except Exception:  # DecodeError, or anything a parser raises on garbage
            return _Refused(
                GatewayError(
                    Reason.INVALID_REQUEST,
                    "The request could not be parsed as this method's protobuf message.",
                )
            )
        field = codec.too_deep(message, len(raw))
        if field is not None:
            return _Refused(GatewayError(Reason.INVALID_REQUEST, TOO_DEEP, param=field))
        return message

    return deserialize


async def _refuse(context: Context, error: GatewayError) -> None:
    metrics.observe_error("grpc", error)
    await abort(context, error)


# grpc-stubs types handler behaviours as the sync API's; the aio server calls them as below.
def _unary(behavior: Callable[..., Any]) -> Callable[[Any, Context], Awaitable[Any]]:
    async def checked(request: Any, context: Context) -> Any:
        if isinstance(request, _Refused):
            await _refuse(context, request.error)
        return await behavior(request, context)

    return checked


def _streaming(behavior: Callable[..., Any]) -> Callable[[Any, Context], AsyncIterator[Any]]:
    # grpc.aio tells streaming handlers by their being async generator functions, so this is one.
    async def checked(request: Any, context: Context) -> AsyncIterator[Any]:
        if isinstance(request, _Refused):
            await _refuse(context, request.error)
        events = behavior(request, context)
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()  # at once: the method's own cleanup cancels the upstream call

    return checked


class IntakeInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        kwargs = {
            "request_deserializer": _deserializer(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(_unary(handler.unary_unary), **kwargs)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(_streaming(handler.unary_stream), **kwargs)
        return handler  # streaming requests (reflection): parsed per message by grpcio, left alone
