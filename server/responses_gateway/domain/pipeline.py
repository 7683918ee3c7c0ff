"""One request's journey: plan it, open the upstream (with retries), assemble and record its events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.domain import events as ev
from responses_gateway.domain.assembler import Assembler
from responses_gateway.domain.inputs import history, input_items, with_ids
from responses_gateway.domain.recorder import Recorder
from responses_gateway.domain.shell import response_shell
from responses_gateway.errors import GatewayError, Reason, echo
from responses_gateway.providers.base import Provider, ProviderCall
from responses_gateway.providers.features import DROPPED_HEADER
from responses_gateway.providers.mock import MockProvider
from responses_gateway.store.base import ResponseStore, StoredResponse
from responses_gateway.telemetry import metrics
from responses_gateway.v1 import events_pb2, items_pb2, request_pb2, response_pb2

Event = events_pb2.ResponseStreamEvent


@dataclass(frozen=True)
class CallContext:
    """What a transport knows about the caller. `deadline` is on the time.monotonic() clock."""

    deadline: float | None = None
    # Filled by the domain for the transport to pass on (HTTP headers / gRPC trailers), e.g. the
    # parameters a deployment with drop_params dropped.
    notes: dict[str, str] = field(default_factory=dict)

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise GatewayError(Reason.DEADLINE_EXCEEDED, "The request's deadline passed.")
        return left


def merge_notes(into: dict[str, str], notes: dict[str, str]) -> None:
    """Add an upstream call's notes to the caller's: dropped-parameter lists are joined, not replaced
    (the Chat Completions surface drops chat-only knobs before the adapter drops its own)."""
    for key, value in notes.items():
        if key == DROPPED_HEADER and into.get(key):
            names = into[key].split(",")
            into[key] = ",".join(names + [n for n in value.split(",") if n not in names])
        else:
            into[key] = value


def upstream_key(deployment: ResolvedDeployment) -> str:
    """Two deployments with the same key share the upstream's stored state."""
    return f"{deployment.adapter}:{deployment.api_base}"


def keeps_state(provider: Provider) -> bool:
    return bool(getattr(provider, "keeps_state", False))


@dataclass
class Plan:
    request: request_pb2.CreateResponseRequest
    ctx: CallContext
    items: list[items_pb2.Item]  # this turn's input, with ids, as stored
    previous: StoredResponse | None
    store: bool
    log_events: bool
    flush_seconds: float = 0.05  # longest an event log row waits before it is written
    mode: str = "stream"  # "unary" / "stream" / "background", for the metrics
    started: float = field(default_factory=time.monotonic)


async def make_plan(
    request: request_pb2.CreateResponseRequest,
    ctx: CallContext,
    store: ResponseStore,
    *,
    log_all_events: bool,
    flush_seconds: float = 0.05,
) -> Plan:
    if not request.model:
        raise GatewayError(Reason.INVALID_REQUEST, "Missing required parameter: 'model'.", param="model")
    items = with_ids(input_items(request))
    previous = None
    if request.previous_response_id:
        previous = await store.get(request.previous_response_id)
    keep = request.store if request.HasField("store") else True
    return Plan(
        request,
        ctx,
        items,
        previous,
        keep,
        log_events=request.background or log_all_events,
        flush_seconds=flush_seconds,
    )


async def call_for(
    plan: Plan, store: ResponseStore, deployment: ResolvedDeployment, provider: Provider
) -> ProviderCall:
    """The request as this deployment should receive it.

    `previous_response_id` goes upstream as is only when that upstream keeps state and holds it (or the
    gateway never saw it); otherwise the gateway replays the stored conversation as input items.
    """
    request = plan.request
    native = keeps_state(provider)
    prev = plan.previous
    replay = prev is not None and not (native and prev.upstream_id == upstream_key(deployment))
    if request.previous_response_id and prev is None and not native:
        raise GatewayError(
            Reason.INVALID_REQUEST,
            f"Previous response with id '{echo(request.previous_response_id)}' not found.",
            param="previous_response_id",
        )
    if replay or request.background:
        request = request_pb2.CreateResponseRequest()
        request.CopyFrom(plan.request)
        request.ClearField("background")  # the gateway runs background responses itself
        if replay and prev is not None:
            request.ClearField("previous_response_id")
            earlier = await history(store, prev)
            request.ClearField("input")
            request.input.items.items.extend(earlier)
            request.input.items.items.extend(plan.items)
    # A native upstream brings its own Response; the shell is for adapters that build theirs.
    shell = response_pb2.Response() if native else response_shell(plan.request, plan.request.model)
    return ProviderCall(request, deployment, shell, timeout=plan.ctx.remaining())


def request_mock(
    request: request_pb2.CreateResponseRequest, deployment: ResolvedDeployment, provider: Provider
) -> Provider:
    """LiteLLM's per-request `mock_response` (a string): answered by the mock, nothing goes upstream."""
    value = request.extra_fields.get("mock_response")
    if value is None or value.WhichOneof("kind") != "string_value":
        return provider
    return MockProvider(deployment, value.string_value)


@dataclass
class Opened:
    deployment: ResolvedDeployment
    provider: Provider
    call: ProviderCall
    events: AsyncIterator[Event]
    first: Event
    # Why the upstream broke off mid-stream, if it did (the stream itself ends in response.failed).
    error: GatewayError | None = None


async def open_stream(
    plan: Plan, store: ResponseStore, deployment: ResolvedDeployment, provider: Provider
) -> Opened:
    """Start the upstream stream and wait for its first event: failures up to here can be retried."""
    call = await call_for(plan, store, deployment, provider)
    events = provider.stream(call)
    try:
        first = await anext(events)
    except StopAsyncIteration:
        raise GatewayError(Reason.UPSTREAM_ERROR, "The upstream sent an empty stream.") from None
    except BaseException:
        await events.aclose()  # type: ignore[attr-defined]
        raise
    merge_notes(plan.ctx.notes, call.notes)
    return Opened(deployment, provider, call, events, first)


def _failure_code(error: GatewayError) -> str:
    return "rate_limit_exceeded" if error.reason == Reason.RATE_LIMITED else "server_error"


async def _with_failures(opened: Opened, asm: Assembler) -> AsyncIterator[Event]:
    """The upstream's events, ended by a well-formed `response.failed` if the upstream breaks off."""
    yield opened.first
    try:
        async for event in opened.events:
            yield event
    except GatewayError as e:
        opened.error = e
        yield asm.failure(_failure_code(e), e.message)
        return
    if asm.saw_error is not None:
        err = getattr(asm.saw_error, ev.ARM_OF_TAG[ev.ERROR])
        yield asm.failure("server_error", err.message or "The upstream reported an error.")
    else:
        yield asm.failure("server_error", "The upstream ended the stream before the response was complete.")


async def _drain(events: AsyncIterator[Event], seconds: float = 5.0) -> None:
    """Read the upstream to its end after the terminal event (its last bytes follow at once), so the
    connection goes back to the pool: closing a response half-read would throw the connection away."""
    try:
        async with asyncio.timeout(seconds):
            async for _ in events:
                pass
    except (TimeoutError, GatewayError):
        pass


async def run_stream(plan: Plan, store: ResponseStore, opened: Opened) -> AsyncIterator[Event]:
    """Number, record and relay the events; the terminal one only after the store has it."""
    asm = Assembler(opened.call.skeleton, own_indices=keeps_state(opened.provider))
    recorder = (
        Recorder(
            store,
            plan.items,
            deployment=opened.deployment.model_name,
            upstream_id=upstream_key(opened.deployment),
            log_events=plan.log_events,
            flush_seconds=plan.flush_seconds,
        )
        if plan.store
        else None
    )
    finished = False
    source = _with_failures(opened, asm)
    try:
        async for event in source:
            asm.accept(event)
            if plan.request.background and asm.response is not None:
                asm.response.background = True
            if recorder is not None and not recorder.started and asm.response.id:
                recorder.start(asm.response)
            if asm.terminal_type is not None:
                if recorder is not None:
                    await recorder.finish(asm.response, event)
                finished = True
                metrics.observe_response(
                    plan.request.model, plan.mode, asm.response, time.monotonic() - plan.started
                )
                yield event
                await _drain(opened.events)
                return
            if recorder is not None:
                recorder.event(event)
            yield event
    finally:
        await source.aclose()  # type: ignore[attr-defined]
        await opened.events.aclose()  # type: ignore[attr-defined]
        if not finished and recorder is not None and recorder.started:
            # The client went away (or the run was cancelled): keep what was produced, say so.
            cancelled = asm.broken_off(response_pb2.RESPONSE_STATUS_CANCELLED)
            await asyncio.shield(recorder.finish(cancelled, None))
