"""Domain errors as gRPC statuses: the canonical code plus a google.rpc.Status with an ErrorInfo."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from responses_gateway.errors import ERROR_DOMAIN, GatewayError


def to_grpc_status(error: GatewayError) -> grpc.Status:
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
    return rpc_status.to_status(status)


async def abort(context: grpc.aio.ServicerContext, error: GatewayError) -> None:  # type: ignore[type-arg]
    # grpc-stubs lacks abort_with_status on the aio context; grpcio has it.
    await context.abort_with_status(to_grpc_status(error))  # type: ignore[attr-defined]
