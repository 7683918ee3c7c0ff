"""The Responses service: every operation both transports offer, in one place.

Transports parse, authenticate and encode; everything that decides what happens is here. A create is
a response run (domain/run.py): streamed, folded into one Response, or run in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

from responses_gateway.config.providers import AdapterKind
from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.contract import events as ev
from responses_gateway.contract.ids import check_item_id, check_response_id
from responses_gateway.contract.items import item_id
from responses_gateway.domain import accounting, compaction, tokens
from responses_gateway.domain.context import CallContext
from responses_gateway.domain.follow import follow_stored
from responses_gateway.domain.history import history
from responses_gateway.domain.interrupts import Interrupts
from responses_gateway.domain.leases import Leases
from responses_gateway.domain.plan import make_plan, upstream_key
from responses_gateway.domain.run import HookFactory, ResponseRun, RunDeps, TurnHook
from responses_gateway.domain.tools.compose import GatewayTools
from responses_gateway.domain.tools.mcp_loop import McpTools
from responses_gateway.errors import GatewayError, Reason, echo
from responses_gateway.providers.base import (
    Provider,
    ProviderCall,
    SupportsCompact,
    SupportsNativeState,
    SupportsTokenCount,
)
from responses_gateway.routing.router import Router
from responses_gateway.store.base import Order, ResponseStore, StoredResponse, is_running
from responses_gateway.v1 import (
    events_pb2,
    items_pb2,
    models_pb2,
    request_pb2,
    response_pb2,
)
from responses_gateway.v1 import (
    responses_service_pb2 as rs,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", rs.CountInputTokensRequest, rs.CompactResponseRequest)
Event = events_pb2.ResponseStreamEvent


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
        hook: TurnHook | HookFactory | None = None,
        leases: Leases | None = None,
        cancel_wait_seconds: float = 5.0,
    ) -> None:
        self.router = router
        self.store = store
        self.interrupts = Interrupts()
        self.leases = leases
        config = router.config.config
        if hook is None:
            # The gateway's own tools (MCP, tool search): a hook only for the requests that have them.
            hook = GatewayTools(McpTools(config.gateway_settings.mcp, config.mcp_servers))
        self.deps = RunDeps(router, router.providers, store, self.interrupts, hook, leases)
        # Background runs in this process, by response id, while they run.
        self.live: dict[str, ResponseRun] = {}
        # Cancels asked for by other replicas, while they take effect here.
        self._remote_cancels: set[asyncio.Task[response_pb2.Response]] = set()
        self.cancel_wait_seconds = cancel_wait_seconds
        store.on_cancel = self._cancel_requested
        self.log_all_events = log_all_events
        self.flush_seconds = flush_seconds
        self.started_at = int(time.time())
        # Seals the gateway's compaction items and opens them in later inputs (domain/compaction.py).
        self.sealer = compaction.Sealer.from_setting(router.config.config.gateway_settings.compaction_key)

    def use(self, router: Router) -> None:
        """A reloaded config: new calls route with `router` (its providers, and its config's MCP
        settings, compaction key and flush interval). Runs in flight keep the `RunDeps` they were made
        with, so they finish on the router and providers they started on."""
        config = router.config.config
        hook = self.deps.hook
        if isinstance(hook, McpTools):
            hook = McpTools(config.gateway_settings.mcp, config.mcp_servers)
        self.router = router
        self.deps = RunDeps(router, router.providers, self.store, self.interrupts, hook, self.leases)
        self.sealer = compaction.Sealer.from_setting(config.gateway_settings.compaction_key)
        self.flush_seconds = config.gateway_settings.stream_event_flush_ms / 1000

    # --- create ----------------------------------------------------------------------------------

    async def _run(
        self,
        request: request_pb2.CreateResponseRequest,
        ctx: CallContext,
        mode: str,
        previous: StoredResponse | None = None,
    ) -> ResponseRun:
        plan = await make_plan(
            request,
            ctx,
            self.store,
            mode="background" if request.background else mode,
            log_all_events=self.log_all_events,
            flush_seconds=self.flush_seconds,
            previous=previous,
            sealer=self.sealer,
        )
        accounting.begin(plan, self.router.config.config.gateway_settings.telemetry.log_prompts)
        return ResponseRun(plan, self.deps)

    async def create(
        self, request: request_pb2.CreateResponseRequest, ctx: CallContext
    ) -> response_pb2.Response:
        run = await self._run(request, ctx, "unary")
        if request.background:
            return await self._start_background(run)
        return await run.fold()

    async def stream(
        self,
        request: request_pb2.CreateResponseRequest,
        ctx: CallContext,
        previous: StoredResponse | None = None,
    ) -> AsyncGenerator[Event, None]:
        """The events of a new response. Errors before the first event raise here (the transport
        answers with a status); after it, a broken upstream ends the stream with `response.failed`.

        `previous`: a turn the transport keeps itself (WebSocket mode's `store: false` continuation,
        `plan.kept_turn`), used when `previous_response_id` names it instead of reading the store."""
        run = await self._run(request, ctx, "stream", previous)
        if request.background:
            await self._start_background(run)
            return run.follow()
        await run.start()
        return run.events()

    async def _start_background(self, run: ResponseRun) -> response_pb2.Response:
        """The run in a task of its own; returns once the upstream accepted it and the store has it."""
        await run.start()
        shown = await run.spawn()
        self.live[shown.id] = run
        assert run.task is not None
        run.task.add_done_callback(lambda _: self.live.pop(shown.id, None))
        return shown

    # --- read, delete, cancel --------------------------------------------------------------------

    async def get(self, request: rs.GetResponseRequest, ctx: CallContext) -> response_pb2.Response:
        check_response_id(request.response_id)
        stored = await self.store.get(request.response_id)
        if stored is not None:
            return stored.response
        return await self._native(request.response_id, lambda p: p.retrieve(request.response_id))

    async def stream_get(
        self, request: rs.GetResponseRequest, ctx: CallContext
    ) -> AsyncGenerator[Event, None]:
        """Replay a response's events after `starting_after`, following it live while it runs."""
        rid = check_response_id(request.response_id)
        after = request.starting_after if request.HasField("starting_after") else -1
        run = self.live.get(rid)
        if run is not None:
            return run.follow(after)
        stored = await self.store.get(rid)
        if stored is None:
            raise _not_found(rid)
        if stored.response.background and is_running(stored.response):
            # Running on another replica (a shared store): follow it through the store.
            return follow_stored(self.store, rid, after)
        events = await self.store.read_events(rid, after)
        if not events and not stored.response.background and not self.log_all_events:
            raise GatewayError(
                Reason.INVALID_REQUEST,
                "Only responses created with background=true can be streamed again.",
                param="stream",
            )
        return _replay(events)

    async def delete(self, request: rs.DeleteResponseRequest, ctx: CallContext) -> rs.DeleteResponseResponse:
        rid = check_response_id(request.response_id)
        stored = await self.store.get(rid)
        if stored is None:
            return await self._native(rid, lambda p: p.delete(rid))
        provider = self._provider_of(stored)
        if isinstance(provider, SupportsNativeState):
            # The upstream kept its own copy; a delete must not leave it behind (nor wait on it long).
            with contextlib.suppress(GatewayError, TimeoutError):
                async with asyncio.timeout(self._lookup_timeout):
                    await provider.delete(rid)
        await self.store.delete(rid)
        return rs.DeleteResponseResponse(id=rid, object="response.deleted", deleted=True)

    async def cancel(self, request: rs.CancelResponseRequest, ctx: CallContext) -> response_pb2.Response:
        rid = check_response_id(request.response_id)
        run = self.live.get(rid)
        if run is not None:
            # Ends the run `cancelled` (or finds it ended); the store has its final state on return.
            return await run.cancel()
        stored = await self.store.get(rid)
        if stored is None:
            return await self._native(rid, lambda p: p.cancel(rid))
        if not stored.response.background:
            raise GatewayError(
                Reason.NOT_CANCELLABLE,
                "Only responses created with background=true can be cancelled.",
                param="response_id",
            )
        if not is_running(stored.response):
            return stored.response
        return await self._cancel_elsewhere(rid)

    async def _cancel_elsewhere(self, rid: str) -> response_pb2.Response:
        """A background response another replica runs: ask it (through the store's signals) and wait
        until the store says it ended. A replica that died is not waited for: its lease tells."""
        async with self.store.watch(rid) as watch:
            await self.store.request_cancel(rid)
            deadline = time.monotonic() + self.cancel_wait_seconds
            while True:
                stored = await self.store.get(rid)
                if stored is None:
                    raise _not_found(rid)
                if not is_running(stored.response):
                    return stored.response
                if stored.lease_until < time.time() and self.leases is not None:
                    await self.leases.reap(time.time())  # its replica is gone: end it now
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GatewayError(
                        Reason.UPSTREAM_TIMEOUT,
                        "The replica running the response did not confirm the cancel in time; retry.",
                    )
                await watch.wait(left)

    def _cancel_requested(self, rid: str) -> None:
        """Another replica relays a client's cancel of a response that runs here."""
        run = self.live.get(rid)
        if run is None or run.done:
            return
        task = asyncio.ensure_future(run.cancel())
        self._remote_cancels.add(task)
        task.add_done_callback(self._remote_cancels.discard)

    async def list_input_items(
        self, request: rs.ListInputItemsRequest, ctx: CallContext
    ) -> rs.ListInputItemsResponse:
        check_response_id(request.response_id)
        for name in ("after", "before"):
            if getattr(request, name):
                check_item_id(getattr(request, name), name)
        limit = request.limit if request.HasField("limit") else 20
        if not 1 <= limit <= 100:
            raise GatewayError(Reason.INVALID_REQUEST, "limit must be between 1 and 100.", param="limit")
        order: Order = "asc" if request.order == rs.LIST_ORDER_ASC else "desc"
        try:
            page = await self.store.list_input_items(
                request.response_id,
                after=request.after or None,
                before=request.before or None,
                limit=limit,
                order=order,
            )
        except KeyError as e:
            cursor = str(e.args[0])
            raise GatewayError(
                Reason.INVALID_REQUEST,
                f"No input item with id '{echo(cursor)}' in response '{echo(request.response_id)}'.",
                param="before" if cursor == request.before else "after",
            ) from None
        if page is None:
            return await self._native(request.response_id, lambda p: p.list_input_items(request))
        out = rs.ListInputItemsResponse(object="list", has_more=page.has_more)
        out.data.extend(page.items)
        if page.items:
            out.first_id, out.last_id = item_id(page.items[0]), item_id(page.items[-1])
        return out

    # --- model-routed utilities ------------------------------------------------------------------

    async def count_input_tokens(
        self, request: rs.CountInputTokensRequest, ctx: CallContext
    ) -> rs.CountInputTokensResponse:
        """The upstream's own count where it has one (OpenAI, Anthropic, Gemini), else the gateway's
        estimate (domain/tokens.py), marked `"estimated": true`."""
        model = self._model_of(request)
        items, previous = await self._conversation(request)

        async def attempt(d: ResolvedDeployment, p: Provider) -> rs.CountInputTokensResponse:
            if isinstance(p, SupportsTokenCount):
                return await p.count_input_tokens(_with_input(request, items, previous))
            if previous is not None:
                raise _previous_not_found(previous)
            if request.HasField("conversation"):
                # OpenAI keeps conversations; the gateway cannot see (and so count) their items.
                raise GatewayError(
                    Reason.UNSUPPORTED_PARAMETER,
                    f"`{d.litellm_model}` cannot count a stored `conversation`: send its items as `input`.",
                    param="conversation",
                )
            # Off the event loop: a large input takes the tokenizer a while.
            count = await asyncio.to_thread(tokens.estimate, request, items)
            return tokens.estimated(count)

        return await self.router.first_success(model, attempt)

    async def compact(
        self, request: rs.CompactResponseRequest, ctx: CallContext
    ) -> rs.CompactResponseResponse:
        """The upstream's own compaction where it has one (OpenAI), else the gateway's: the model's
        summary of the conversation, sealed in a compaction item any provider accepts later."""
        model = self._model_of(request)
        items, previous = await self._conversation(request)

        async def attempt(d: ResolvedDeployment, p: Provider) -> rs.CompactResponseResponse:
            if isinstance(p, SupportsCompact):
                return await p.compact(_with_input(request, items, previous))
            if previous is not None:
                raise _previous_not_found(previous)
            return await self._summarize(d, p, compaction.summary_request(items, request), ctx)

        return await self.router.first_success(model, attempt)

    async def _summarize(
        self,
        deployment: ResolvedDeployment,
        provider: Provider,
        request: request_pb2.CreateResponseRequest,
        ctx: CallContext,
    ) -> rs.CompactResponseResponse:
        """One upstream turn on this deployment, read to its end (nothing reached the client yet, so
        a failure is a status the router may retry elsewhere), its text sealed."""
        stream = provider.open(ProviderCall(request, deployment, timeout=ctx.remaining()))
        final: response_pb2.Response | None = None
        try:
            async for event in stream:
                if ev.is_terminal(event):
                    final = ev.response_of(event)
        finally:
            await stream.aclose()
        if final is None or final.status == response_pb2.RESPONSE_STATUS_FAILED:
            detail = final.error.message if final is not None and final.HasField("error") else ""
            raise GatewayError(
                Reason.UPSTREAM_ERROR, f"The model could not summarize the conversation. {detail}".strip()
            )
        return compaction.compacted(compaction.output_text(final), final.usage, self.sealer)

    async def _conversation(
        self, request: rs.CountInputTokensRequest | rs.CompactResponseRequest
    ) -> tuple[list[items_pb2.Item], str | None]:
        """The input as an upstream should see it: the stored turns behind `previous_response_id`
        replayed in front, the gateway's compaction items opened. The id comes back when the gateway
        does not hold it (only an upstream that keeps state may know it)."""
        items = compaction.request_items(request)
        previous: str | None = None
        if request.previous_response_id:
            rid = check_response_id(request.previous_response_id, "previous_response_id")
            stored = await self.store.get(rid)
            if stored is None:
                previous = rid
            else:
                items = [*await history(self.store, stored), *items]
        return compaction.open_items(items, self.sealer) or items, previous

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

    def _lookup_target(self) -> SupportsNativeState | None:
        """The one upstream asked about ids the gateway does not hold (`gateway_settings.native_lookup`).

        Never several: asking every native deployment in turn multiplied one client call into many
        upstream calls (a DELETE among them), and let one unreachable deployment turn 404s into 5xxs."""
        setting = self.router.config.config.gateway_settings.native_lookup
        if setting == "off":
            return None
        candidates = (
            self.router.config.deployments if setting == "auto" else self.router.config.lookup(setting)
        )
        found: dict[str, SupportsNativeState] = {}
        for d in candidates:
            if not d.enabled or d.adapter != AdapterKind.RESPONSES or d.mock_response is not None:
                continue
            provider = self.router.providers.get(d)
            if isinstance(provider, SupportsNativeState):
                found.setdefault(f"{upstream_key(d)}|{d.api_key}", provider)
        return next(iter(found.values())) if len(found) == 1 else None

    async def _native(self, response_id: str, op: Callable[[SupportsNativeState], Awaitable[T]]) -> T:
        """Hand an operation on an id the gateway never stored to the upstream that may keep it (e.g. a
        response made at OpenAI directly). Bounded in time; whatever goes wrong there is a 404 here."""
        provider = self._lookup_target()
        if provider is None:
            raise _not_found(response_id)
        try:
            async with asyncio.timeout(self._lookup_timeout):
                return await op(provider)
        except (GatewayError, TimeoutError) as e:
            if not (
                isinstance(e, GatewayError) and e.reason in (Reason.NOT_FOUND, Reason.RESPONSE_NOT_FOUND)
            ):
                log.warning("upstream lookup of %s failed: %r", response_id, e)
            raise _not_found(response_id) from None

    @property
    def _lookup_timeout(self) -> float:
        return self.router.config.config.gateway_settings.native_lookup_timeout_seconds

    async def drain(self, seconds: float, margin: float) -> None:
        """Shutdown: let runs in flight finish for `seconds`; then end the rest with a terminal event
        (recorded) within `margin`, while the transports can still deliver it."""
        if await self.interrupts.wait_idle(seconds):
            return
        log.warning("ending the responses still running: the grace period is over")
        self.interrupts.interrupt_all()
        await self.interrupts.wait_idle(margin)

    async def aclose(self) -> None:
        """Stop what still runs, and wait until every write it owes the store has landed."""
        self.interrupts.interrupt_all()
        tasks = [run.task for run in self.live.values() if run.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.interrupts.wait_idle(5.0)


def _previous_not_found(response_id: str) -> GatewayError:
    return GatewayError(
        Reason.INVALID_REQUEST,
        f"Previous response with id '{echo(response_id)}' not found.",
        param="previous_response_id",
    )


def _with_input(request: M, items: list[items_pb2.Item], previous: str | None) -> M:
    """A copy of `request` with `items` as its input (and `previous_response_id` only if still owed)."""
    out = type(request)()
    out.CopyFrom(request)
    out.ClearField("input")
    out.input.items.items.extend(items)
    out.ClearField("previous_response_id")
    if previous is not None:
        out.previous_response_id = previous
    return out


async def _replay(events: list[Event]) -> AsyncGenerator[Event, None]:
    for event in events:
        yield event
