"""gRPC servicers: each method hands its request to the domain service and maps errors on the way out."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import Any, TypeVar

import grpc

from responses_gateway.domain.context import CallContext
from responses_gateway.domain.service import ResponsesService
from responses_gateway.errors import GatewayError, Reason, as_gateway_error
from responses_gateway.telemetry import metrics
from responses_gateway.transport.grpc.errors import abort
from responses_gateway.transport.grpc.method import CURRENT_METHOD
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
Context = grpc.aio.ServicerContext[Any, Any]


def call_context(context: Context) -> CallContext:
    remaining = context.time_remaining()
    deadline = time.monotonic() + remaining if remaining is not None else None
    return CallContext(deadline=deadline)


def _domain_error(e: Exception) -> GatewayError:
    error = as_gateway_error(e)
    if error.reason == Reason.INTERNAL and error is not e:
        log.exception("unexpected error")
    metrics.observe_error(CURRENT_METHOD.get(), error)
    return error


def _trailers(context: Context, ctx: CallContext | None) -> None:
    if ctx is not None and ctx.notes:
        context.set_trailing_metadata(tuple(ctx.notes.items()))


async def unary(context: Context, work: Awaitable[T], ctx: CallContext | None = None) -> T:
    try:
        result = await work
        _trailers(context, ctx)
        return result
    except Exception as e:
        await abort(context, _domain_error(e))
    raise AssertionError("abort returns only by raising")


async def streaming(
    context: Context,
    opening: Awaitable[AsyncGenerator[events_pb2.ResponseStreamEvent, None]],
    ctx: CallContext | None = None,
) -> AsyncIterator[events_pb2.ResponseStreamEvent]:
    """Relay events; closing the domain stream (client cancelled, deadline) cancels the upstream call.
    An error before the first event (raised by `opening`) is the call's status."""
    events: AsyncGenerator[events_pb2.ResponseStreamEvent, None] | None = None
    try:
        events = await opening
        async for event in events:
            yield event
        _trailers(context, ctx)
    except Exception as e:
        await abort(context, _domain_error(e))
    finally:
        if events is not None:
            await events.aclose()


class ResponsesServicer(responses_service_pb2_grpc.ResponsesServiceServicer):
    def __init__(self, service: ResponsesService) -> None:
        self.service = service

    async def CreateResponse(
        self, request: request_pb2.CreateResponseRequest, context: Context
    ) -> response_pb2.Response:
        ctx = call_context(context)
        return await unary(context, self.service.create(request, ctx), ctx)

    async def StreamResponse(
        self, request: request_pb2.CreateResponseRequest, context: Context
    ) -> AsyncIterator[events_pb2.ResponseStreamEvent]:
        ctx = call_context(context)
        async for event in streaming(context, self.service.stream(request, ctx), ctx):
            yield event

    async def GetResponse(self, request: rs.GetResponseRequest, context: Context) -> response_pb2.Response:
        return await unary(context, self.service.get(request, call_context(context)))

    async def StreamGetResponse(
        self, request: rs.GetResponseRequest, context: Context
    ) -> AsyncIterator[events_pb2.ResponseStreamEvent]:
        async for event in streaming(context, self.service.stream_get(request, call_context(context))):
            yield event

    async def DeleteResponse(
        self, request: rs.DeleteResponseRequest, context: Context
    ) -> rs.DeleteResponseResponse:
        return await unary(context, self.service.delete(request, call_context(context)))

    async def CancelResponse(
        self, request: rs.CancelResponseRequest, context: Context
    ) -> response_pb2.Response:
        return await unary(context, self.service.cancel(request, call_context(context)))

    async def ListInputItems(
        self, request: rs.ListInputItemsRequest, context: Context
    ) -> rs.ListInputItemsResponse:
        return await unary(context, self.service.list_input_items(request, call_context(context)))

    async def CompactResponse(
        self, request: rs.CompactResponseRequest, context: Context
    ) -> rs.CompactResponseResponse:
        return await unary(context, self.service.compact(request, call_context(context)))

    async def CountInputTokens(
        self, request: rs.CountInputTokensRequest, context: Context
    ) -> rs.CountInputTokensResponse:
        return await unary(context, self.service.count_input_tokens(request, call_context(context)))


class ModelsServicer(models_pb2_grpc.ModelsServiceServicer):
    def __init__(self, service: ResponsesService) -> None:
        self.service = service

    async def ListModels(
        self, request: models_pb2.ListModelsRequest, context: Context
    ) -> models_pb2.ListModelsResponse:
        return await unary(context, self.service.list_models(call_context(context)))
