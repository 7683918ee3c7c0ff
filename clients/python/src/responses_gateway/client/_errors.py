"""Typed errors built from the gateway's rich gRPC status (google.rpc.Status + ErrorInfo + RetryInfo)."""

from __future__ import annotations

import contextlib
from typing import Any, cast

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from responses_gateway.v1 import errors_pb2

ERROR_DOMAIN = "responses-gateway"

# rpc_status and google.rpc.Status carry the code as a number; map it back to the enum so it prints by name.
_CODES_BY_NUMBER: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


def status_code(code: grpc.StatusCode | int) -> grpc.StatusCode:
    """`code` as a `grpc.StatusCode` (a number, as in `google.rpc.Status.code`, is looked up; unknown: UNKNOWN)."""
    if isinstance(code, grpc.StatusCode):
        return code
    return _CODES_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)


class GatewayError(Exception):
    """An RPC to the gateway failed.

    `code` is the gRPC status code (`code_name` its name, e.g. ``NOT_FOUND``), `reason` the ErrorInfo reason
    (UPPER_SNAKE, e.g. ``MODEL_NOT_FOUND``; None when the status carried no ErrorInfo, e.g. the gateway was
    unreachable), `metadata` the ErrorInfo metadata (``param``, ``code``, ``retry_after``...), `retry_after`
    seconds to wait before retrying. ``str(e)`` is ``"NOT_FOUND MODEL_NOT_FOUND: <message>"``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | int = grpc.StatusCode.UNKNOWN,
        reason: str | None = None,
        domain: str | None = None,
        metadata: dict[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = status_code(code)
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        self.retry_after = retry_after

    @property
    def param(self) -> str | None:
        """The request parameter at fault, when the gateway named one."""
        return self.metadata.get("param")

    @property
    def code_name(self) -> str:
        """The gRPC status code's name, e.g. ``NOT_FOUND`` (``print(e.code)`` shows ``StatusCode.NOT_FOUND``)."""
        return self.code.name

    def __str__(self) -> str:
        # "NOT_FOUND MODEL_NOT_FOUND: ..." like the Go client; the reason is not repeated when it is the code.
        label = self.code.name
        if self.reason and self.reason != label:
            label = f"{label} {self.reason}"
        return f"{label}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code.name}, reason={self.reason!r}, message={self.message!r})"
        )


class InvalidRequestError(GatewayError):
    """The request was malformed or not acceptable (INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE)."""


class AuthenticationError(GatewayError):
    """Missing or wrong API key (UNAUTHENTICATED)."""


class PermissionDeniedError(GatewayError):
    """The key may not do this (PERMISSION_DENIED)."""


class NotFoundError(GatewayError):
    """Unknown model or response (NOT_FOUND)."""


class ConflictError(GatewayError):
    """Conflicting concurrent change (ABORTED, ALREADY_EXISTS)."""


class RateLimitError(GatewayError):
    """Rate limit or quota hit (RESOURCE_EXHAUSTED); see `retry_after`."""


class QuotaExceededError(RateLimitError):
    """The virtual key spent its budget (RESOURCE_EXHAUSTED, reason BUDGET_EXCEEDED): waiting a little
    does not help (OpenAI's `insufficient_quota`)."""


class DeadlineExceededError(GatewayError):
    """The call's deadline passed (DEADLINE_EXCEEDED)."""


class RequestCancelledError(GatewayError):
    """The call was cancelled (CANCELLED) other than by the client's own `cancel()`."""


class UpstreamError(GatewayError):
    """The upstream provider failed, was unavailable or timed out (reasons UPSTREAM_*)."""


class UnavailableError(GatewayError):
    """The gateway could not be reached or cannot serve now (UNAVAILABLE without an upstream reason)."""


class UnimplementedError(GatewayError):
    """The gateway does not implement this (UNIMPLEMENTED)."""


class InternalServerError(GatewayError):
    """The gateway failed (INTERNAL, UNKNOWN, DATA_LOSS)."""


def reason_name(reason: errors_pb2.ErrorReason.ValueType) -> str:
    """The ErrorInfo `reason` string of an `ErrorReason` constant (`ERROR_REASON_RATE_LIMITED` ->
    ``"RATE_LIMITED"``), so code can compare `error.reason` with the generated constants."""
    return errors_pb2.ErrorReason.Name(reason).removeprefix("ERROR_REASON_")


_R = errors_pb2.ErrorReason
_BY_REASON: dict[str, type[GatewayError]] = {
    reason_name(r): cls
    for r, cls in (
        (_R.ERROR_REASON_UNAUTHENTICATED, AuthenticationError),
        (_R.ERROR_REASON_PERMISSION_DENIED, PermissionDeniedError),
        (_R.ERROR_REASON_MODEL_NOT_FOUND, NotFoundError),
        (_R.ERROR_REASON_RESPONSE_NOT_FOUND, NotFoundError),
        (_R.ERROR_REASON_NOT_FOUND, NotFoundError),
        (_R.ERROR_REASON_RATE_LIMITED, RateLimitError),
        (_R.ERROR_REASON_BUDGET_EXCEEDED, QuotaExceededError),
        # RESOURCE_EXHAUSTED on gRPC, but the request's size, not a rate.
        (_R.ERROR_REASON_REQUEST_TOO_LARGE, InvalidRequestError),
        (_R.ERROR_REASON_UPSTREAM_ERROR, UpstreamError),
        (_R.ERROR_REASON_UPSTREAM_UNAVAILABLE, UpstreamError),
        (_R.ERROR_REASON_UPSTREAM_TIMEOUT, UpstreamError),
        (_R.ERROR_REASON_UPSTREAM_AUTH_FAILED, UpstreamError),
        (_R.ERROR_REASON_PROVIDER_NOT_CONFIGURED, UnavailableError),
        (_R.ERROR_REASON_SHUTTING_DOWN, UnavailableError),
        (_R.ERROR_REASON_STORE_UNAVAILABLE, UnavailableError),
    )
}

_BY_CODE: dict[grpc.StatusCode, type[GatewayError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.FAILED_PRECONDITION: InvalidRequestError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidRequestError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ABORTED: ConflictError,
    grpc.StatusCode.ALREADY_EXISTS: ConflictError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimitError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.CANCELLED: RequestCancelledError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: InternalServerError,
    grpc.StatusCode.UNKNOWN: InternalServerError,
    grpc.StatusCode.DATA_LOSS: InternalServerError,
}


def error_class(code: grpc.StatusCode, reason: str | None) -> type[GatewayError]:
    """The GatewayError subclass for a status code and ErrorInfo reason (the reason wins when known)."""
    if reason is not None and reason in _BY_REASON:
        return _BY_REASON[reason]
    return _BY_CODE.get(code, GatewayError)


def _rich_status(error: grpc.RpcError) -> status_pb2.Status | None:
    try:
        # Both the sync error (also a grpc.Call) and grpc.aio.AioRpcError answer code() / details() /
        # trailing_metadata() synchronously, which is all from_call needs.
        status = rpc_status.from_call(cast(grpc.Call, error))
    except (ValueError, AttributeError, TypeError):  # inconsistent or undecodable details
        return None
    return cast("status_pb2.Status | None", status)


def from_rpc_error(error: grpc.RpcError) -> GatewayError:
    """Translate an RpcError into the matching GatewayError subclass."""
    call = cast(Any, error)
    code: grpc.StatusCode = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
    message: str = (call.details() if hasattr(call, "details") else None) or str(error)
    reason = domain = None
    metadata: dict[str, str] = {}
    retry_after: float | None = None
    status = _rich_status(error)
    if status is not None:
        message = status.message or message
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, domain, metadata = info.reason or None, info.domain or None, dict(info.metadata)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_after = retry.retry_delay.ToMilliseconds() / 1000
    if retry_after is None and "retry_after" in metadata:
        with contextlib.suppress(ValueError):
            retry_after = float(metadata["retry_after"])
    cls = error_class(code, reason)
    return cls(message, code=code, reason=reason, domain=domain, metadata=metadata, retry_after=retry_after)
