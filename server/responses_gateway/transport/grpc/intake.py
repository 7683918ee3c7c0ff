"""Request intake for every unary-request method: bytes that are not the method's message, and messages
nested deeper than the contract stores, are the client's error (INVALID_ARGUMENT with an ErrorInfo).

grpcio answers UNKNOWN when a request deserializer raises, so the deserializer never does here: it
hands the method a `_Refused` instead, which the servicer's `admitted(request)` raises as the domain
error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from responses_gateway import codec
from responses_gateway.codec.values import TOO_DEEP
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.transport.grpc.auth import Handler

T = TypeVar("T")
# The services whose methods check `admitted(request)`.
_OURS = "/responses_gateway."


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


def admitted(request: T) -> T:
    """The request a method was handed, or the intake's refusal of it raised (the servicer maps it
    like any domain error). Checked by the servicer, so the method runs unwrapped: no extra hop."""
    if isinstance(request, _Refused):
        raise request.error
    return request


def with_intake(method: str, handler: Handler) -> Handler:
    """`handler` with the intake's deserializer (our services' methods; the others as they are)."""
    if handler.request_deserializer is None or not method.startswith(_OURS):
        return handler  # health and reflection: grpcio's own handlers, left as they are
    kwargs = {
        "request_deserializer": _deserializer(handler.request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(handler.unary_unary, **kwargs)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(handler.unary_stream, **kwargs)
    return handler
