"""A thin, typed helper over the generated `responses_gateway.v1` stubs.

    from responses_gateway.client import ResponsesClient, output_text, status_name

    with ResponsesClient("localhost:50051", api_key="sk-...") as client:
        response = client.create(model="gpt-4.1", input="Say hi")
        print(output_text(response), status_name(response))  # "completed", not 1

Requests and results are the `responses_gateway.v1` protobuf messages; failed calls raise `GatewayError`
subclasses, never a bare `grpc.RpcError`.
"""

from responses_gateway.client._async import AsyncResponsesClient, AsyncResponseStream
from responses_gateway.client._common import (
    output_text,
    status_name,
    terminal_response,
    text_delta,
    to_input,
)
from responses_gateway.client._errors import (
    AuthenticationError,
    ConflictError,
    DeadlineExceededError,
    GatewayError,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RequestCancelledError,
    UnavailableError,
    UnimplementedError,
    UpstreamError,
    from_rpc_error,
    reason_name,
    status_code,
)
from responses_gateway.client._sync import ResponsesClient, ResponseStream

__all__ = [
    "AsyncResponseStream",
    "AsyncResponsesClient",
    "AuthenticationError",
    "ConflictError",
    "DeadlineExceededError",
    "GatewayError",
    "InternalServerError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestCancelledError",
    "ResponseStream",
    "ResponsesClient",
    "UnavailableError",
    "UnimplementedError",
    "UpstreamError",
    "from_rpc_error",
    "output_text",
    "reason_name",
    "status_code",
    "status_name",
    "terminal_response",
    "text_delta",
    "to_input",
]
