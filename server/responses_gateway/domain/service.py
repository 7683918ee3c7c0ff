"""The Responses service: every operation both transports offer, in one place.

Transports parse, authenticate and encode; everything that decides what happens is here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from responses_gateway.config.providers import AdapterKind
from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.domain import events as ev
from responses_gateway.domain.live import LiveRun, LiveRuns
from responses_gateway.domain.pipeline import (
    CallContext,
    Opened,
    Plan,
    call_for,
    keeps_state,
    make_plan,
    merge_notes,
    open_stream,
    request_mock,
    run_stream,
    upstream_key,
)
from responses_gateway.errors import GatewayError, Reason, echo
from responses_gateway.providers.base import (
    Provider,
    SupportsCompact,
    SupportsCreate,
    SupportsNativeState,
    SupportsTokenCount,
)
from responses_gateway.routing.router import Router
from responses_gateway.store.base import Order, ResponseStore, StoredResponse
from responses_gateway.telemetry import metrics
from responses_gateway.v1 import (
    events_pb2,
    models_pb2,
    request_pb2,
    response_pb2,
)
from responses_gateway.v1 import (
    responses_service_pb2 as rs,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Event = events_pb2.ResponseStreamEvent

_TERMINAL_STATUSES = frozenset(
    {
        response_pb2.RESPONSE_STATUS_COMPLETED,
        response_pb2.RESPONSE_STATUS_FAILED,
        response_pb2.RESPONSE_STATUS_INCOMPLETE,
        response_pb2.RESPONSE_STATUS_CANCELLED,
    }
)


def _not_found(response_id: str) -> GatewayError:
    return GatewayError(
        Reason.RESPONSE_NOT_FOUND, f"Response with id '{echo(response_id)}' not found.", param="response_id"
    )


class ResponsesService:
    def __init__(
        self,
        router: Router,
        store: ResponseStore,
        *,
        log_all_events: bool = False,
        flush_seconds: float = 0.05,
    ) -> None:
        self.router = router
        self.store = store
        self.live = LiveRuns()
        self.log_all_events = log_all_events
        self.flush_seconds = flush_seconds
        self.started_at = int(time.time())

    # --- create ----------------------------------------------------------------------------------

    async def create(
        self, request: request_pb2.CreateResponseRequest, ctx: CallContext
    ) -> response_pb2.Response:
        plan = await make_plan(
            request, ctx, self.store, log_all_events=self.log_all_events, flush_seconds=self.flush_seconds
        )
        plan.mode = "background" if request.background else "unary"
        if request.background:
            run = await self._start_background(plan)
            first = run.events[0]
            shown = ev.response_of(first)
            return shown if shown is not None else response_pb2.Response()

        async def attempt(deployment: ResolvedDeployment, provider: Provider) -> response_pb2.Response:
            provider = request_mock(plan.request, deployment, provider)
            if not isinstance(provider, SupportsCreate):
                return await self._fold(plan, await open_stream(plan, self.store, deployment, provider))
            call = await call_for(plan, self.store, deployment, provider)
            response = await provider.create(call)
            merge_notes(ctx.notes, call.notes)
            if plan.store:
                if not response.id:
                    raise GatewayError(
                        Reason.UPSTREAM_ERROR, "The upstream returned a response without an id."
                    )
                record = StoredResponse(response, plan.items, deployment.model_name, upstream_key(deployment))
                await self.store.put(record)
            metrics.observe_response(request.model, plan.mode, response, time.monotonic() - plan.started)
            return response

        return await self.router.first_success(request.model, attempt)

    async def _fold(self, plan: Plan, opened: Opened) -> response_pb2.Response:
        """A unary call as the fold of the stream (recorded like a stream)."""
        final: response_pb2.Response | None = None
        async for event in run_stream(plan, self.store, opened):
            final = ev.response_of(event) or final
        if opened.error is not None:
            # Nothing reached the client yet: a broken upstream is an error status (and the router may
            # retry), as it is for adapters with a native unary call. The store keeps the failed record.
            raise opened.error
        assert final is not None
        return final

    # --- stream ----------------------------------------------------------------------------------

    async def stream(
        self, request: request_pb2.CreateResponseRequest, ctx: CallContext
    ) -> AsyncIterator[Event]:
        """Errors before the first event are raised (the transport answers with a status); after it, a
        broken upstream ends the stream with `response.failed`."""
        plan = await make_plan(
            request, ctx, self.store, log_all_events=self.log_all_events, flush_seconds=self.flush_seconds
        )
        if request.background:
            plan.mode = "background"
            run = await self._start_background(plan)
            async for event in run.follow():
                yield event
            return
        opened = await self._open(plan)
        async for event in run_stream(plan, self.store, opened):
            yield event

    async def _open(self, plan: Plan) -> Opened:
        async def attempt(deployment: ResolvedDeployment, provider: Provider) -> Opened:
            provider = request_mock(plan.request, deployment, provider)
            return await open_stream(plan, self.store, deployment, provider)

        return await self.router.first_success(plan.request.model, attempt)

    async def _start_background(self, plan: Plan) -> LiveRun:
        """Run the response in a task of its own; returns once the upstream accepted it."""
        opened = await self._open(plan)
        run = LiveRun()
        ready = asyncio.get_running_loop().create_future()

        async def drive() -> None:
            rid = ""
            try:
                async for event in run_stream(plan, self.store, opened):
                    if not rid:
                        response = ev.response_of(event)
                        rid = response.id if response is not None else ""
                        self.live.add(rid, run)
                    await run.publish(event)
                    if not ready.done():
                        ready.set_result(None)
            finally:
                await run.close()
                if not ready.done():
                    ready.set_exception(
                        GatewayError(Reason.UPSTREAM_ERROR, "The response ended before it began.")
                    )
                if rid:
                    self.live.remove(rid)

        run.task = asyncio.create_task(drive())
        await ready
        return run

    # --- read, delete, cancel --------------------------------------------------------------------

    async def get(self, request: rs.GetResponseRequest, ctx: CallContext) -> response_pb2.Response:
        stored = await self.store.get(request.response_id)
        if stored is not None:
            return stored.response
        return await self._native(request.response_id, lambda p: p.retrieve(request.response_id))

    async def stream_get(self, request: rs.GetResponseRequest, ctx: CallContext) -> AsyncIterator[Event]:
        """Replay a response's events after `starting_after`, following it live while it runs."""
        after = request.starting_after if request.HasField("starting_after") else -1
        run = self.live.get(request.response_id)
        if run is not None:
            async for event in run.follow(after):
                yield event
            return
        stored = await self.store.get(request.response_id)
        if stored is None:
            raise _not_found(request.response_id)
        events = await self.store.read_events(request.response_id, after)
        if not events and not stored.response.background and not self.log_all_events:
            raise GatewayError(
                Reason.INVALID_REQUEST,
                "Only responses created with background=true can be streamed again.",
                param="stream",
            )
        for event in events:
            yield event

    async def delete(self, request: rs.DeleteResponseRequest, ctx: CallContext) -> rs.DeleteResponseResponse:
        rid = request.response_id
        stored = await self.store.get(rid)
        if stored is None:
            return await self._native(rid, lambda p: p.delete(rid))
        provider = self._provider_of(stored)
        if isinstance(provider, SupportsNativeState):
            # The upstream kept its own copy; a delete must not leave it behind.
            with contextlib.suppress(GatewayError):
                await provider.delete(rid)
        await self.store.delete(rid)
        return rs.DeleteResponseResponse(id=rid, object="response.deleted", deleted=True)

    async def cancel(self, request: rs.CancelResponseRequest, ctx: CallContext) -> response_pb2.Response:
        rid = request.response_id
        run = self.live.get(rid)
        if run is not None and run.task is not None:
            run.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run.task
        stored = await self.store.get(rid)
        if stored is None:
            if run is None:
                return await self._native(rid, lambda p: p.cancel(rid))
            raise _not_found(rid)
        if not stored.response.background:
            raise GatewayError(
                Reason.NOT_CANCELLABLE,
                "Only responses created with background=true can be cancelled.",
                param="response_id",
            )
        return stored.response

    async def list_input_items(
        self, request: rs.ListInputItemsRequest, ctx: CallContext
    ) -> rs.ListInputItemsResponse:
        limit = request.limit if request.HasField("limit") else 20
        if not 1 <= limit <= 100:
            raise GatewayError(Reason.INVALID_REQUEST, "limit must be between 1 and 100.", param="limit")
        order: Order = "asc" if request.order == rs.LIST_ORDER_ASC else "desc"
        page = await self.store.list_input_items(
            request.response_id, after=request.after or None, limit=limit, order=order
        )
        if page is None:
            return await self._native(request.response_id, lambda p: p.list_input_items(request))
        out = rs.ListInputItemsResponse(object="list", has_more=page.has_more)
        out.data.extend(page.items)
        if page.items:
            from responses_gateway.store.sqlite import item_id

            out.first_id, out.last_id = item_id(page.items[0]), item_id(page.items[-1])
        return out

    # --- model-routed utilities ------------------------------------------------------------------

    async def count_input_tokens(
        self, request: rs.CountInputTokensRequest, ctx: CallContext
    ) -> rs.CountInputTokensResponse:
        async def attempt(d: ResolvedDeployment, p: Provider) -> rs.CountInputTokensResponse:
            if not isinstance(p, SupportsTokenCount):
                raise GatewayError(
                    Reason.NOT_IMPLEMENTED, f"`{d.litellm_model}` cannot count input tokens.", param="model"
                )
            return await p.count_input_tokens(request)

        return await self.router.first_success(self._model_of(request), attempt)

    async def compact(
        self, request: rs.CompactResponseRequest, ctx: CallContext
    ) -> rs.CompactResponseResponse:
        async def attempt(d: ResolvedDeployment, p: Provider) -> rs.CompactResponseResponse:
            if not isinstance(p, SupportsCompact):
                raise GatewayError(
                    Reason.NOT_IMPLEMENTED,
                    f"`{d.litellm_model}` cannot compact a conversation.",
                    param="model",
                )
            return await p.compact(request)

        return await self.router.first_success(self._model_of(request), attempt)

    async def list_models(self, ctx: CallContext) -> models_pb2.ListModelsResponse:
        out = models_pb2.ListModelsResponse(object="list")
        by_name = {d.model_name: d for d in self.router.config.deployments if d.enabled}
        for name in self.router.config.model_names():
            d = by_name[name]
            out.data.add(
                id=name, object="model", created=self.started_at, owned_by=str(d.provider or "gateway")
            )
        return out

    @staticmethod
    def _model_of(request: rs.CountInputTokensRequest | rs.CompactResponseRequest) -> str:
        if not request.model:
            raise GatewayError(Reason.INVALID_REQUEST, "Missing required parameter: 'model'.", param="model")
        return request.model

    # --- upstreams that keep state ---------------------------------------------------------------

    def _provider_of(self, stored: StoredResponse) -> Provider | None:
        for d in self.router.config.deployments:
            if d.enabled and upstream_key(d) == stored.upstream_id:
                return self.router.providers.get(d)
        return None

    async def _native(self, response_id: str, op: Callable[[SupportsNativeState], Awaitable[T]]) -> T:
        """Ask each upstream that keeps its own responses (e.g. OpenAI) about one the gateway never stored."""
        seen: set[str] = set()
        for d in self.router.config.deployments:
            if not d.enabled or d.adapter != AdapterKind.RESPONSES or d.mock_response is not None:
                continue
            key = f"{upstream_key(d)}|{d.api_key}"
            if key in seen:
                continue
            seen.add(key)
            provider = self.router.providers.get(d)
            if not (keeps_state(provider) and isinstance(provider, SupportsNativeState)):
                continue
            try:
                return await op(provider)
            except GatewayError as e:
                if e.reason not in (Reason.NOT_FOUND, Reason.RESPONSE_NOT_FOUND, Reason.UNAUTHENTICATED):
                    raise
        raise _not_found(response_id)

    async def aclose(self) -> None:
        for run in self.live.all():
            if run.task is not None:
                run.task.cancel()
