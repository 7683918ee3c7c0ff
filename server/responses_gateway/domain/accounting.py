"""A response's accounting: routing hints in, cost settled, and one observation out.

`begin` (before routing) gives the router the request's hints: a per-request `num_retries` (LiteLLM's
request-body field) and, for a `previous_response_id` follow-up, the deployments that hold the
conversation. `settle` (once the final response is known, before it is stored or sent) puts its cost in
`usage.cost` (LiteLLM's spelling, in `extra_fields` so both specs' extra-field rules and gRPC clients
see it alike). `observe` (once the response ended) feeds the metrics, the request log and the trace,
and ends the call's record.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from responses_gateway import codec
from responses_gateway.codec import shadow
from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.contract import events as ev
from responses_gateway.cost.prices import PriceBook
from responses_gateway.domain.plan import Plan, upstream_key
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.telemetry import metrics, requestlog, tracing
from responses_gateway.telemetry.record import CallRecord
from responses_gateway.v1 import events_pb2, response_pb2

COST_FIELD = "cost"  # usage.cost, as LiteLLM's clients read it
NUM_RETRIES = "num_retries"
_MAX_RETRIES = 10  # a client cannot make one call hammer an upstream


def begin(plan: Plan, log_prompts: bool = False) -> None:
    record = plan.ctx.record
    record.model = plan.request.model
    record.mode = plan.mode
    record.log_prompts = log_prompts
    extra = plan.request.extra_fields
    if NUM_RETRIES in extra:
        value = extra[NUM_RETRIES]
        n = value.number_value if value.WhichOneof("kind") == "number_value" else -1.0
        if not (0 <= n <= _MAX_RETRIES and n == int(n)):
            raise GatewayError(
                Reason.INVALID_REQUEST,
                f"num_retries must be an integer from 0 to {_MAX_RETRIES}.",
                param=NUM_RETRIES,
            )
        record.num_retries = int(n)
        del extra[NUM_RETRIES]  # the gateway's, not the upstream's: OpenAI refuses unknown parameters
    previous = plan.previous
    if previous is not None and previous.upstream_id:
        # The upstream that holds the earlier turn continues it natively (no replay of the history).
        held = previous.upstream_id
        record.prefer = lambda d: upstream_key(d) == held
    tracing.start(record, plan.request)


def settle(
    plan: Plan,
    deployment: ResolvedDeployment,
    response: response_pb2.Response,
    terminal: events_pb2.ResponseStreamEvent | None,
    prices: PriceBook,
) -> None:
    """The final response's cost, on it (and on the terminal event's copy), before it is stored."""
    record = plan.ctx.record
    record.upstream_ended = time.monotonic()
    if terminal is not None:
        record.events = terminal.sequence_number + 1
    if not response.HasField("usage"):
        return
    usage = response.usage
    record.input_tokens, record.output_tokens = usage.input_tokens, usage.output_tokens
    record.priced = True
    record.cost = prices.cost(deployment, usage, response.model)
    plan.ctx.notes.update(record.cost_header())  # "unknown" without a price
    if record.cost is None:
        return
    usage.extra_fields[COST_FIELD].number_value = record.cost
    shadow.set_number(response, ("usage", COST_FIELD), record.cost)  # a REST reply's kept JSON
    shown = ev.response_of(terminal) if terminal is not None else None
    if shown is not None and shown is not response and shown.HasField("usage"):
        shown.usage.extra_fields[COST_FIELD].number_value = record.cost


def observe(plan: Plan, response: response_pb2.Response) -> None:
    """Once per response that ended with a terminal event (a unary call's, or a stream's)."""
    record = plan.ctx.record
    now = time.monotonic()
    total = now - plan.started
    streamed = plan.mode != "unary"
    overhead = first = gap = None
    if record.upstream_started:
        upstream = (record.upstream_ended or now) - record.upstream_started
        overhead = max(total - upstream, 0.0)
    if streamed and record.first_event:
        first = record.first_event - plan.started
        if record.events > 2 and record.upstream_ended:
            gap = (record.upstream_ended - record.first_event) / (record.events - 1)
    model = record.served_model or plan.request.model
    record.status = metrics.status_name(response.status)
    metrics.observe_response(
        model,
        plan.mode,
        response,
        total,
        provider=record.provider,
        overhead=overhead,
        first_event=first,
        gap=gap,
        cost=record.cost,
    )
    if requestlog.enabled():
        requestlog.write(_line(record, plan, response, total, overhead, first))
    tracing.finish(record, response)
    record.end()


def _line(
    record: CallRecord,
    plan: Plan,
    response: response_pb2.Response,
    total: float,
    overhead: float | None,
    first: float | None,
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "request_id": record.request_id,
        "response_id": response.id,
        "model": record.model,
        "served_model": record.served_model,
        "deployment": record.deployment,
        "provider": record.provider,
        "mode": plan.mode,
        "status": record.status,
        "latency_ms": round(total * 1000, 3),
        "overhead_ms": None if overhead is None else round(overhead * 1000, 3),
        "ttft_ms": None if first is None else round(first * 1000, 3),
        "attempts": record.attempts,
        "fallbacks": record.fallbacks,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cost": record.cost,
    }
    if record.log_prompts:
        line["input"] = [orjson.loads(codec.dumps(i)) for i in plan.items]
        line["output"] = [orjson.loads(codec.dumps(i)) for i in response.output]
    return line
