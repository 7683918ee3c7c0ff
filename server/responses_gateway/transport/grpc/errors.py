"""Domain errors as gRPC statuses: the canonical code plus a google.rpc.Status with an ErrorInfo."""

from __future__ import annotations

import collections

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from responses_gateway.errors import ERROR_DOMAIN, GatewayError


def to_grpc_status(error: GatewayError, trailers: tuple[tuple[str, str], ...] = ()) -> grpc.Status:
    """The status, its details in `grpc-status-details-bin`, and `trailers` beside them (the request id:
    aborting replaces whatever trailing metadata the call had set)."""
    info = error_details_pb2.ErrorInfo(
        reason=error.reason.value, domain=ERROR_DOMAIN, metadata=error.error_info_metadata()
    )
    details = [any_pb2.Any()]
    details[0].Pack(info)
    if error.retry_after is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromMilliseconds(int(error.retry_after * 1000))
        details.append(any_pb2.Any())
        details[-1].Pack(retry)
    status = status_pb2.Status(code=error.mapping.grpc_code.value[0], message=error.message, details=details)
    base = rpc_status.to_status(status)
    return _Status(base.code, base.details, (*base.trailing_metadata, *trailers))


class _Status(collections.namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status):
    """grpc.Status is an interface; grpc_status's own implementation is private."""


async def abort(
    context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    error: GatewayError,
    trailers: tuple[tuple[str, str], ...] = (),
) -> None:
    # grpc-stubs lacks abort_with_status on the aio context; grpcio has it.
    await context.abort_with_status(to_grpc_status(error, trailers))  # type: ignore[attr-defined]
