"""One call's telemetry record: what the router chose and what the response cost, for the headers /
trailers, the request log, the metrics and the trace.

The transport makes it (with the request id and the caller's trace context) inside the call's
`CallContext`; the router fills in the deployment that served, its retries and fallbacks; the domain
settles the cost and observes it once, at the end. The record is also the call's *current* one in a
context variable while the router runs an attempt, so the upstream HTTP client sends the request id and
the trace context on (`outbound_headers`) without every layer passing it down.
"""

from __future__ import annotations

import contextvars
import time
import urllib.parse
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from responses_gateway.errors import GatewayError, Reason

# Response headers / gRPC trailers (lower case: gRPC metadata keys must be).
REQUEST_ID_HEADER = "x-request-id"
DEPLOYMENT_HEADER = "x-gateway-deployment"  # the model_info.id (or "<model_name>#<index>") that served
MODEL_HEADER = "x-gateway-model"  # the model_name that served: the one asked for, or a fallback
COST_HEADER = "x-gateway-cost"  # USD, or "unknown" when the model has no price
ATTEMPTS_HEADER = "x-gateway-attempts"  # upstream calls made for this response (1 = no retry)
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
UNKNOWN_COST = "unknown"
MAX_REQUEST_ID_CHARS = 128
MAX_HEADER_CHARS = 256  # the routing headers' values (x-gateway-deployment / -model)

CURRENT: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar("call_record", default=None)


@dataclass(slots=True, eq=False, weakref_slot=True)
class CallRecord:
    request_id: str
    started: float = field(default_factory=time.monotonic)
    traceparent: str | None = None  # the caller's W3C trace context, if it sent one
    tracestate: str | None = None
    # Set before routing: the model asked for, a per-request `num_retries`, and a predicate naming the
    # deployments that already hold the conversation (a `previous_response_id` follow-up prefers them).
    model: str = ""
    mode: str = ""  # unary / stream / background
    log_prompts: bool = False
    num_retries: int | None = None
    prefer: Callable[[Any], bool] | None = None
    # Set by the router: who served, and what it took.
    deployment: str = ""  # deployment_id
    served_model: str = ""  # model_name of the deployment that served
    upstream_model: str = ""
    provider: str = ""
    attempts: int = 0
    fallbacks: int = 0  # fallback model groups moved to
    upstream_started: float = 0.0  # the first upstream call (time.monotonic)
    first_event: float = 0.0  # the serving attempt's first event (streams) / its answer (unary)
    # Set when the response ended.
    upstream_ended: float = 0.0
    events: int = 0  # the response's events, its terminal one included (streams)
    cost: float | None = None
    priced: bool = False  # settled: `cost` None then means "no price"
    status: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    # Called when the response ended (the router's in-flight and tokens-per-minute accounting).
    on_end: list[Callable[[CallRecord | None], None]] = field(default_factory=list)
    observed: bool = False  # the metrics and the request log have it (once per call)
    span: Any = None  # the OpenTelemetry span, when tracing is on
    span_done: bool = False

    def __post_init__(self) -> None:
        # A backstop for a response nobody ended (a background run cancelled before its end): the
        # hooks run when the record is dropped. They get no record then, only their own state.
        weakref.finalize(self, _orphaned, self.on_end)

    def end(self) -> None:
        """The response is over (finished, failed, or its caller went away). Runs each hook once; a
        unary call retried after a failed stream adds hooks again, and ends again."""
        hooks = list(self.on_end)
        self.on_end.clear()
        for hook in hooks:
            hook(self)

    @property
    def retries(self) -> int:
        return max(self.attempts - 1, 0)

    def close_call(self) -> None:
        """The transport's call is over: the response is too, unless it runs on in the background."""
        if self.mode != "background":
            self.end()

    def served_headers(self) -> dict[str, str]:
        """What the client is told about routing once the upstream answered."""
        if not self.deployment:
            return {}
        return {
            DEPLOYMENT_HEADER: header_value(self.deployment),
            MODEL_HEADER: header_value(self.served_model),
            ATTEMPTS_HEADER: str(self.attempts),
        }

    def cost_header(self) -> dict[str, str]:
        if not self.priced:
            return {}
        return {COST_HEADER: UNKNOWN_COST if self.cost is None else format_cost(self.cost)}


def header_value(value: str) -> str:
    """A name as a header / gRPC metadata value: a wildcard deployment is named after whatever model
    the client asked for, and a header must be printable ASCII (gRPC fails the whole call otherwise;
    HTTP clients refuse huge heads). Anything else is percent-encoded; the result is capped."""
    if not (value.isascii() and value.isprintable()):
        value = urllib.parse.quote(value, safe="")
    return value if len(value) <= MAX_HEADER_CHARS else value[: MAX_HEADER_CHARS - 3] + "..."


def _orphaned(hooks: list[Callable[[CallRecord | None], None]]) -> None:
    for hook in hooks:
        hook(None)
    hooks.clear()


def format_cost(usd: float) -> str:
    """Enough digits for a one-token call, no float noise (`0.00585`, not `0.005850000000000001`)."""
    return f"{usd:.10f}".rstrip("0").rstrip(".") or "0"


def outbound_headers() -> list[tuple[str, str]]:
    """Headers every upstream request of the current call carries: its request id and trace context."""
    record = CURRENT.get()
    if record is None:
        return []
    out = [(REQUEST_ID_HEADER, record.request_id)]
    parent = _span_traceparent(record) or record.traceparent
    if parent:
        out.append((TRACEPARENT, parent))
        if record.tracestate:
            out.append((TRACESTATE, record.tracestate))
    return out


def _span_traceparent(record: CallRecord) -> str | None:
    """With tracing on, the upstream call is a child of the gateway's span, not of the caller's."""
    if record.span is None:
        return None
    ctx = record.span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def client_request_id(value: str | None) -> str | None:
    """A caller's own `x-request-id` (header / gRPC metadata), kept as the call's id when it is 1 to 128
    printable ASCII characters (it goes into logs, traces, trailers and upstream headers, so nothing
    that could split or forge a line); None when there is none. Anything else is a 400."""
    if value is None:
        return None
    if (
        0 < len(value) <= MAX_REQUEST_ID_CHARS
        and value.isascii()
        and value.isprintable()
        and value.strip() == value
    ):
        return value
    raise GatewayError(
        Reason.INVALID_REQUEST,
        f"Invalid '{REQUEST_ID_HEADER}': use 1 to {MAX_REQUEST_ID_CHARS} printable ASCII characters "
        "without leading or trailing spaces, or leave it out.",
        param=REQUEST_ID_HEADER,
    )
