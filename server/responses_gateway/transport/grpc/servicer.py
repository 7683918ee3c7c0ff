"""gRPC servicers: each method hands its request to the domain service and maps errors on the way out."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc

from responses_gateway.auth import CURRENT_PRINCIPAL
from responses_gateway.contract.ids import new_id
from responses_gateway.domain.context import REQUEST_ID_HEADER, CallContext
from responses_gateway.domain.service import ResponsesService
from responses_gateway.errors import GatewayError, Reason, as_gateway_error
from responses_gateway.platform.gate import Gate
from responses_gateway.telemetry import metrics
from responses_gateway.telemetry.record import TRACEPARENT, TRACESTATE, CallRecord, client_request_id
from responses_gateway.transport.grpc.errors import abort
from responses_gateway.transport.grpc.intake import admitted
from responses_gateway.transport.grpc.method import CURRENT_METADATA, CURRENT_METHOD
from responses_gateway.transport.grpc.readahead import read_ahead
from responses_gateway.v1 import (
    events_pb2,
    models_pb2,
    models_pb2_grpc,
    request_pb2,
    response_pb2,
    responses_service_pb2_grpc,
)
from responses_gateway.v1 import (
    responses_service_pb2 as rs,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
Context = grpc.aio.ServicerContext[Any, Any]


def _call_metadata(context: Context) -> Sequence[tuple[str, Any]]:
    """The call's metadata: the interceptor's copy (method.py), else the context's."""
    metadata = CURRENT_METADATA.get()
    if metadata is None:
        own: Any = context.invocation_metadata()  # pairs at run time, whatever grpc-stubs says
        return own or ()
    return metadata


def _metadata(context: Context, key: str) -> str | None:
    for k, value in _call_metadata(context):
        if k == key and isinstance(value, str):
            return value
    return None


def _context(context: Context, *, trace: bool) -> CallContext:
    remaining = context.time_remaining()
    deadline = time.monotonic() + remaining if remaining is not None else None
    rid: str | None = None
    traceparent = tracestate = None
    for key, value in _call_metadata(context):  # one pass for all three
        if not isinstance(value, str):
            continue
        if key == REQUEST_ID_HEADER:
            rid = value if rid is None else rid  # the first one
        elif trace and key == TRACEPARENT:
            traceparent = value[:128]  # the last one, as for each of these two
        elif trace and key == TRACESTATE:
            tracestate = value[:512]
    record = CallRecord(client_request_id(rid) or new_id("req"))
    if traceparent is not None:
        record.traceparent = traceparent
    if tracestate is not None:
        record.tracestate = tracestate
    return CallContext(deadline=deadline, record=record, principal=CURRENT_PRINCIPAL.get())


def call_context(context: Context) -> CallContext:
    """The call's context: its deadline and request id (the caller's own `x-request-id` when it sent
    a valid one; an invalid one raises, a 400-like INVALID_ARGUMENT)."""
    return _context(context, trace=False)


def create_context(context: Context) -> CallContext:
    """A create's context: as `call_context`, with the caller's W3C trace context from the metadata."""
    return _context(context, trace=True)


def _domain_error(e: Exception) -> GatewayError:
    error = as_gateway_error(e)
    if error.reason == Reason.INTERNAL and error is not e:
        log.exception("unexpected error")
    metrics.observe_error(CURRENT_METHOD.get(), error)
    return error


def _trailers(context: Context, ctx: CallContext | None) -> None:
    if ctx is not None:
        context.set_trailing_metadata(tuple(ctx.headers().items()))


def _error_trailers(context: Context, ctx: CallContext | None) -> tuple[tuple[str, str], ...]:
    """What a failed call's trailers say beside its status: the request id (the call's, or the
    caller's valid one when the call failed before it had a context), and who served, if any did."""
    if ctx is not None:
        return tuple(ctx.headers().items())
    try:
        rid = client_request_id(_metadata(context, REQUEST_ID_HEADER)) or new_id("req")
    except GatewayError:
        rid = new_id("req")
    return ((REQUEST_ID_HEADER, rid),)


async def unary(
    context: Context,
    request: R,
    op: Callable[[R, CallContext], Awaitable[T]],
    make_context: Callable[[Context], CallContext] = call_context,
) -> T:
    ctx: CallContext | None = None
    try:
        ctx = make_context(context)
        result = await op(admitted(request), ctx)
        _trailers(context, ctx)
        return result
    except Exception as e:
        await abort(context, _domain_error(e), _error_trailers(context, ctx))
    finally:
        if ctx is not None:
            ctx.record.close_call()
    raise AssertionError("abort returns only by raising")


class Relay:
    """Error mapping and clean-up around one server-streaming call, whose method relays the events
    itself, read ahead of grpc.aio's sends (`relay`, readahead.py). An error before the
    first event (raised while opening) is the call's status; closing the domain stream (client
    cancelled, deadline) cancels the upstream call. `counted`: a new response's stream (the
    in-flight streams gauge), not a replay."""

    def __init__(self, context: Context, *, counted: bool = False) -> None:
        self.context, self.counted = context, counted
        self.ctx: CallContext | None = None
        self.events: AsyncGenerator[events_pb2.ResponseStreamEvent, None] | None = None
        self._ahead: AsyncGenerator[events_pb2.ResponseStreamEvent, None] | None = None

    def open(self, make_context: Callable[[Context], CallContext] = call_context) -> CallContext:
        self.ctx = make_context(self.context)
        return self.ctx

    def relay(
        self, events: AsyncGenerator[events_pb2.ResponseStreamEvent, None]
    ) -> AsyncIterator[events_pb2.ResponseStreamEvent]:
        """The domain stream's events for the sends, read ahead of them (readahead.py)."""
        self.events = events
        self._ahead = read_ahead(events)
        return self._ahead

    async def __aenter__(self) -> Relay:
        if self.counted:
            metrics.ACTIVE_STREAMS.inc()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, _: Any) -> None:
        try:
            if error is None:
                _trailers(self.context, self.ctx)
            elif isinstance(error, Exception):
                await abort(self.context, _domain_error(error), _error_trailers(self.context, self.ctx))
        finally:
            try:
                if self._ahead is not None:
                    await self._ahead.aclose()  # first: its task may be inside the domain stream
                if self.events is not None:
                    await self.events.aclose()
            finally:
                if self.counted:
                    metrics.ACTIVE_STREAMS.dec()
                if self.ctx is not None:
                    self.ctx.record.close_call()


class ResponsesServicer(responses_service_pb2_grpc.ResponsesServiceServicer):
    def __init__(self, service: ResponsesService, gate: Gate | None = None) -> None:
        self.service = service
        self.gate = gate  # virtual keys' limits and isolation (platform/gate.py); None: no keys

    async def _admit(self, request: request_pb2.CreateResponseRequest, ctx: CallContext) -> None:
        if self.gate is not None:
            ctx.notes.update(await self.gate.admit_create(ctx.principal, request, ctx.record))

    async def _owned(self, response_id: str, ctx: CallContext) -> None:
        if self.gate is not None:
            await self.gate.check_owner(ctx.principal, response_id)

    async def _previous(self, response_id: str, ctx: CallContext) -> None:
        if self.gate is not None:
            await self.gate.check_previous(ctx.principal, response_id)

    async def CreateResponse(
        self, request: request_pb2.CreateResponseRequest, context: Context
    ) -> response_pb2.Response:
        async def create(r: request_pb2.CreateResponseRequest, ctx: CallContext) -> response_pb2.Response:
            await self._admit(r, ctx)
            return await self.service.create(r, ctx)

        return await unary(context, request, create, create_context)

    async def StreamResponse(
        self, request: request_pb2.CreateResponseRequest, context: Context
    ) -> AsyncIterator[events_pb2.ResponseStreamEvent]:
        async with Relay(context, counted=True) as relay:
            ctx = relay.open(create_context)
            create = admitted(request)
            await self._admit(create, ctx)
            async for event in relay.relay(await self.service.stream(create, ctx)):
                yield event

    async def GetResponse(self, request: rs.GetResponseRequest, context: Context) -> response_pb2.Response:
        async def get(r: rs.GetResponseRequest, ctx: CallContext) -> response_pb2.Response:
            await self._owned(r.response_id, ctx)
            return await self.service.get(r, ctx)

        return await unary(context, request, get)

    async def StreamGetResponse(
        self, request: rs.GetResponseRequest, context: Context
    ) -> AsyncIterator[events_pb2.ResponseStreamEvent]:
        async with Relay(context) as relay:
            ctx = relay.open()
            get = admitted(request)
            await self._owned(get.response_id, ctx)
            async for event in relay.relay(await self.service.stream_get(get, ctx)):
                yield event

    async def DeleteResponse(
        self, request: rs.DeleteResponseRequest, context: Context
    ) -> rs.DeleteResponseResponse:
        async def delete(r: rs.DeleteResponseRequest, ctx: CallContext) -> rs.DeleteResponseResponse:
            await self._owned(r.response_id, ctx)
            return await self.service.delete(r, ctx)

        return await unary(context, request, delete)

    async def CancelResponse(
        self, request: rs.CancelResponseRequest, context: Context
    ) -> response_pb2.Response:
        async def cancel(r: rs.CancelResponseRequest, ctx: CallContext) -> response_pb2.Response:
            await self._owned(r.response_id, ctx)
            return await self.service.cancel(r, ctx)

        return await unary(context, request, cancel)

    async def ListInputItems(
        self, request: rs.ListInputItemsRequest, context: Context
    ) -> rs.ListInputItemsResponse:
        async def listing(r: rs.ListInputItemsRequest, ctx: CallContext) -> rs.ListInputItemsResponse:
            await self._owned(r.response_id, ctx)
            return await self.service.list_input_items(r, ctx)

        return await unary(context, request, listing)

    async def CompactResponse(
        self, request: rs.CompactResponseRequest, context: Context
    ) -> rs.CompactResponseResponse:
        async def compact(r: rs.CompactResponseRequest, ctx: CallContext) -> rs.CompactResponseResponse:
            await self._previous(r.previous_response_id, ctx)
            return await self.service.compact(r, ctx)

        return await unary(context, request, compact)

    async def CountInputTokens(
        self, request: rs.CountInputTokensRequest, context: Context
    ) -> rs.CountInputTokensResponse:
        async def count(r: rs.CountInputTokensRequest, ctx: CallContext) -> rs.CountInputTokensResponse:
            await self._previous(r.previous_response_id, ctx)
            return await self.service.count_input_tokens(r, ctx)

        return await unary(context, request, count)


class ModelsServicer(models_pb2_grpc.ModelsServiceServicer):
    def __init__(self, service: ResponsesService) -> None:
        self.service = service

    async def ListModels(
        self, request: models_pb2.ListModelsRequest, context: Context
    ) -> models_pb2.ListModelsResponse:
        return await unary(context, request, lambda _, ctx: self.service.list_models(ctx))
