"""Domain errors and the one table that maps them onto both transports.

Code raises `GatewayError(Reason.X, message, param=...)`; the gRPC servicer and the REST shim look the
reason up in `ERROR_TABLE` and never decide semantics themselves (AIP-193: a canonical code plus an
`ErrorInfo` whose `reason` is the UPPER_SNAKE name below; REST: OpenAI's error JSON and HTTP status).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import grpc

ERROR_DOMAIN = "responses-gateway"


class Reason(enum.Enum):
    INVALID_REQUEST = "INVALID_REQUEST"
    INVALID_JSON = "INVALID_JSON"
    UNSUPPORTED_PARAMETER = "UNSUPPORTED_PARAMETER"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    MODEL_NOT_FOUND = "MODEL_NOT_FOUND"
    RESPONSE_NOT_FOUND = "RESPONSE_NOT_FOUND"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    NOT_CANCELLABLE = "NOT_CANCELLABLE"
    NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
    PROVIDER_NOT_CONFIGURED = "PROVIDER_NOT_CONFIGURED"
    RATE_LIMITED = "RATE_LIMITED"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    CANCELLED = "CANCELLED"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    INTERNAL = "INTERNAL"
    UPSTREAM_AUTH_FAILED = "UPSTREAM_AUTH_FAILED"
    PREVIOUS_RESPONSE_NOT_FOUND = "PREVIOUS_RESPONSE_NOT_FOUND"
    RESPONSE_IN_FLIGHT = "RESPONSE_IN_FLIGHT"
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"


@dataclass(frozen=True)
class ErrorMapping:
    grpc_code: grpc.StatusCode
    http_status: int
    openai_type: str
    openai_code: str | None


ERROR_TABLE: dict[Reason, ErrorMapping] = {
    Reason.INVALID_REQUEST: ErrorMapping(
        grpc.StatusCode.INVALID_ARGUMENT, 400, "invalid_request_error", None
    ),
    Reason.INVALID_JSON: ErrorMapping(grpc.StatusCode.INVALID_ARGUMENT, 400, "invalid_request_error", None),
    Reason.UNSUPPORTED_PARAMETER: ErrorMapping(
        grpc.StatusCode.INVALID_ARGUMENT, 400, "invalid_request_error", "unsupported_parameter"
    ),
    # RESOURCE_EXHAUSTED is what gRPC core itself answers for a message over the receive limit, so a
    # body refused by the gateway and one refused by gRPC core read the same to a client.
    Reason.REQUEST_TOO_LARGE: ErrorMapping(
        grpc.StatusCode.RESOURCE_EXHAUSTED, 413, "invalid_request_error", "request_too_large"
    ),
    Reason.UNAUTHENTICATED: ErrorMapping(
        grpc.StatusCode.UNAUTHENTICATED, 401, "invalid_request_error", "invalid_api_key"
    ),
    Reason.PERMISSION_DENIED: ErrorMapping(
        grpc.StatusCode.PERMISSION_DENIED, 403, "invalid_request_error", "permission_denied"
    ),
    Reason.MODEL_NOT_FOUND: ErrorMapping(
        grpc.StatusCode.NOT_FOUND, 404, "invalid_request_error", "model_not_found"
    ),
    Reason.RESPONSE_NOT_FOUND: ErrorMapping(grpc.StatusCode.NOT_FOUND, 404, "invalid_request_error", None),
    Reason.NOT_FOUND: ErrorMapping(grpc.StatusCode.NOT_FOUND, 404, "invalid_request_error", None),
    Reason.CONFLICT: ErrorMapping(grpc.StatusCode.ABORTED, 409, "invalid_request_error", None),
    Reason.NOT_CANCELLABLE: ErrorMapping(
        grpc.StatusCode.FAILED_PRECONDITION, 400, "invalid_request_error", None
    ),
    # A feature the model's provider lacks (token counts, compaction): the client can pick another
    # model, so it is a 400 as OpenAI answers for "not supported with this model", never a 5xx.
    Reason.NOT_IMPLEMENTED: ErrorMapping(
        grpc.StatusCode.UNIMPLEMENTED, 400, "invalid_request_error", "unsupported_model"
    ),
    Reason.PROVIDER_NOT_CONFIGURED: ErrorMapping(
        grpc.StatusCode.UNAVAILABLE, 503, "server_error", "provider_not_configured"
    ),
    Reason.RATE_LIMITED: ErrorMapping(
        grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "rate_limit_error", "rate_limit_exceeded"
    ),
    # The upstream failed or sent what the gateway cannot read: a bad gateway, not the client's fault.
    # An upstream's own 5xx status is relayed as it is (see GatewayError.http_status).
    Reason.UPSTREAM_ERROR: ErrorMapping(grpc.StatusCode.INTERNAL, 502, "server_error", "bad_gateway"),
    Reason.UPSTREAM_UNAVAILABLE: ErrorMapping(
        grpc.StatusCode.UNAVAILABLE, 503, "server_error", "server_error"
    ),
    Reason.UPSTREAM_TIMEOUT: ErrorMapping(grpc.StatusCode.UNAVAILABLE, 504, "server_error", "timeout"),
    Reason.DEADLINE_EXCEEDED: ErrorMapping(grpc.StatusCode.DEADLINE_EXCEEDED, 504, "server_error", "timeout"),
    Reason.CANCELLED: ErrorMapping(grpc.StatusCode.CANCELLED, 499, "invalid_request_error", "cancelled"),
    # Not retried: the process is going away. Clients retry against another replica.
    Reason.SHUTTING_DOWN: ErrorMapping(
        grpc.StatusCode.UNAVAILABLE, 503, "server_error", "server_shutting_down"
    ),
    # The response store cannot be read or written (disk full, I/O error, corrupted file): the gateway
    # is not usable for calls that need it until the store recovers, like an unavailable upstream.
    Reason.STORE_UNAVAILABLE: ErrorMapping(
        grpc.StatusCode.UNAVAILABLE, 503, "server_error", "store_unavailable"
    ),
    Reason.INTERNAL: ErrorMapping(grpc.StatusCode.INTERNAL, 500, "server_error", "server_error"),
    # The upstream refused the deployment's key: the operator's problem, never the caller's 401.
    Reason.UPSTREAM_AUTH_FAILED: ErrorMapping(
        grpc.StatusCode.INTERNAL, 502, "server_error", "upstream_auth_failed"
    ),
    # OpenAI answers an unknown `previous_response_id` with a 400 of its own code (HTTP and WebSocket).
    Reason.PREVIOUS_RESPONSE_NOT_FOUND: ErrorMapping(
        grpc.StatusCode.INVALID_ARGUMENT, 400, "invalid_request_error", "previous_response_not_found"
    ),
    # WebSocket mode: a second response.create while one runs (the client waits for the terminal event).
    Reason.RESPONSE_IN_FLIGHT: ErrorMapping(
        grpc.StatusCode.FAILED_PRECONDITION, 400, "invalid_request_error", "response_already_in_flight"
    ),
    # A virtual key past its max_budget: OpenAI's answer to an account out of credit (a 429 whose
    # type and code are `insufficient_quota`), which retrying soon does not cure.
    Reason.BUDGET_EXCEEDED: ErrorMapping(
        grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "insufficient_quota", "insufficient_quota"
    ),
}


# Longest client-supplied value an error message quotes, and the longest message (UTF-8 bytes) and
# param / metadata value at all: a 100,000-character id must not come back whole. gRPC sends the
# message twice in the trailers (percent-encoded: up to 3x; and in the base64 status details); a
# client starts refusing trailers over 8 KiB (all over 16 KiB). 1 KiB of message stays under 6 KiB.
ECHO_CHARS = 64
MAX_MESSAGE_BYTES = 1024
MAX_PARAM_CHARS = 256


def echo(value: object, limit: int = ECHO_CHARS) -> str:
    """A client-supplied value as an error message quotes it: control characters escaped, and cut to
    a short prefix (with its full length) when long. Every message that interpolates input uses this."""
    text = value if isinstance(value, str) else repr(value)
    cut = text[:limit]
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)
    return shown if len(text) <= limit else f"{shown}... ({len(text)} characters)"


def _clip(text: str, limit: int) -> str:
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", "ignore") + f"... (cut at {limit} bytes)"


class GatewayError(Exception):
    """An error with a neutral reason; each transport maps it through ERROR_TABLE."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        upstream_status: int | None = None,
        metadata: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        # A backstop for messages built from upstream text or values nobody passed through echo().
        message = _clip(message, MAX_MESSAGE_BYTES)
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.param = echo(param, MAX_PARAM_CHARS) if param is not None else None
        self._code = code
        self.retry_after = retry_after
        self.upstream_status = upstream_status
        self.metadata = metadata or {}
        # HTTP headers the REST answer carries besides retry-after (a limit's `x-ratelimit-*`).
        self.headers = headers or {}

    @property
    def mapping(self) -> ErrorMapping:
        return ERROR_TABLE[self.reason]

    @property
    def code(self) -> str | None:
        return self._code if self._code is not None else self.mapping.openai_code

    @property
    def http_status(self) -> int:
        if (
            self.reason == Reason.UPSTREAM_ERROR
            and self.upstream_status
            and 500 <= self.upstream_status < 600
        ):
            return self.upstream_status  # the upstream's own server error, as the upstream said it
        return self.mapping.http_status

    def openai_body(self) -> dict[str, Any]:
        """OpenAI's error JSON: {"error": {"message", "type", "param", "code"}}."""
        return {
            "error": {
                "message": self.message,
                "type": self.mapping.openai_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def websocket_event(self) -> dict[str, Any]:
        """The Open Responses `WebSocketErrorEvent`: the HTTP-style status beside OpenAI's error object.
        Its `code` is required there: where the table has no OpenAI code, the reason's name (lower case)
        is the machine-readable one."""
        body = self.openai_body()["error"]
        if body["code"] is None:
            body["code"] = self.reason.value.lower()
        return {"type": "error", "status": self.http_status, "error": body}

    def error_info_metadata(self) -> dict[str, str]:
        meta = {k: echo(v, MAX_PARAM_CHARS) for k, v in self.metadata.items()}
        if self.param:
            meta["param"] = self.param
        if self.code:
            meta["code"] = echo(self.code, MAX_PARAM_CHARS)  # an upstream's, possibly
        if self.retry_after is not None:
            meta["retry_after"] = f"{self.retry_after:g}"
        if self.upstream_status is not None:
            meta["upstream_status"] = str(self.upstream_status)
        return meta

    def __repr__(self) -> str:
        return f"GatewayError({self.reason.value}, {self.message!r}, param={self.param!r})"


class InvalidInput(ValueError):
    """Input that does not fit the contract (the codec's CodecError is one): the client's error, a 400,
    unless the input came from an upstream (which the adapter then reports as the upstream's fault)."""

    @property
    def message(self) -> str:
        return str(self)

    @property
    def param(self) -> str | None:
        return None


def as_gateway_error(exc: Exception) -> GatewayError:
    """Any exception a request ended with, as the domain error both transports map (JSON that does not
    fit the contract is the client's error; anything unexpected is the gateway's)."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, InvalidInput):
        return GatewayError(Reason.INVALID_REQUEST, exc.message, param=exc.param)
    return GatewayError(Reason.INTERNAL, f"The gateway failed unexpectedly ({type(exc).__name__}).")


# Failures worth another try on the same or another deployment (before anything reached the client).
# Another deployment may hold a key the upstream accepts, so a refused key is retried elsewhere too.
RETRYABLE = frozenset(
    {
        Reason.RATE_LIMITED,
        Reason.UPSTREAM_ERROR,
        Reason.UPSTREAM_UNAVAILABLE,
        Reason.UPSTREAM_TIMEOUT,
        Reason.UPSTREAM_AUTH_FAILED,
    }
)


def upstream_status_reason(status: int) -> Reason:
    """Reason for an HTTP status an upstream provider answered with."""
    if status in (400, 422):
        return Reason.INVALID_REQUEST
    if status in (401, 403):
        return Reason.UPSTREAM_AUTH_FAILED
    if status == 404:
        return Reason.NOT_FOUND
    if status == 409:
        return Reason.CONFLICT
    if status == 413:
        return Reason.REQUEST_TOO_LARGE
    if status == 429:
        return Reason.RATE_LIMITED
    if status in (502, 503, 529):
        return Reason.UPSTREAM_UNAVAILABLE
    if status == 504:
        return Reason.UPSTREAM_TIMEOUT
    return Reason.UPSTREAM_ERROR
