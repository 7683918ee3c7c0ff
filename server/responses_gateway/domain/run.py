"""The response run: one response, from its plan to its terminal event.

A run opens upstream turns through the router (one, or several when a turn hook continues it: tool
loops, compaction), numbers every event across them (the assembler), lets the domain insert its own
items between turns, records to the store off the path of the deltas (the recorder), folds the final
Response, and ends every failure after the first event with a well-formed terminal event that the
store agrees with. Errors before the first event raise, and the transport answers with a status.

One run, three ways to drive it: a stream iterates `events()`, a unary call is `fold()`, a background
response is `spawn()` (the same events, in a task of its own, that readers `follow()`). Cancellation —
the client gone, `cancel()`, a shutdown — is one path: the run's handle is interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.contract import events as ev
from responses_gateway.domain import accounting
from responses_gateway.domain.assembler import Assembler
from responses_gateway.domain.interrupts import Interrupts, RunHandle
from responses_gateway.domain.leases import Leases
from responses_gateway.domain.plan import Plan, keeps_state, upstream_key, upstream_request
from responses_gateway.domain.recorder import Recorder
from responses_gateway.domain.shell import response_shell
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.base import (
    Capability,
    Provider,
    ProviderCall,
    SupportsCreate,
    UpstreamStream,
)
from responses_gateway.providers.registry import ProviderRegistry
from responses_gateway.routing.router import Router
from responses_gateway.store.base import ResponseStore, StoredResponse
from responses_gateway.v1 import events_pb2, items_pb2, request_pb2, response_pb2

log = logging.getLogger(__name__)
Event = events_pb2.ResponseStreamEvent
CANCELLED_MESSAGE = "The response was cancelled."


@dataclass
class Continuation:
    """What a turn hook wants after a turn: events about items already in the output (a held-back
    `output_item.done`, with the turn-relative output_index the turn's events had), the gateway's own
    items to add to the output, then the request of the next upstream turn (None: the response ends
    here). All of it is numbered by the assembler."""

    items: list[items_pb2.Item] = field(default_factory=list)
    request: request_pb2.CreateResponseRequest | None = None
    events: list[Event] = field(default_factory=list)


class TurnHook(Protocol):
    async def after_turn(self, run: ResponseRun, response: response_pb2.Response) -> Continuation | None:
        """Called when an upstream turn completed; None ends the response with that turn."""
        ...


@runtime_checkable
class RunTools(Protocol, metaclass=Capability):
    """A turn hook that also sees the first upstream request and every turn's events: the gateway's
    own tools (domain/tools/), which replace tools in the request and rewrite the upstream's events
    before the assembler numbers them."""

    async def after_turn(self, run: ResponseRun, response: response_pb2.Response) -> Continuation | None: ...

    async def prepare(
        self,
        run: ResponseRun,
        deployment: ResolvedDeployment,
        provider: object,
        request: request_pb2.CreateResponseRequest,
    ) -> request_pb2.CreateResponseRequest:
        """The first turn's request as this deployment receives it (a GatewayError is its status)."""
        ...

    def rewrite(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        """A turn's events as the client sees them (returns `events` itself when there is nothing to do)."""
        ...


@runtime_checkable
class HookFactory(Protocol, metaclass=Capability):
    """Makes the hook of each run; None for a run it has nothing to do with, which then runs as if
    there were no hook (no held terminal event, the native unary create)."""

    def for_run(self, plan: Plan) -> TurnHook | None: ...


@dataclass
class RunDeps:
    """What every run of a service shares."""

    router: Router
    providers: ProviderRegistry
    store: ResponseStore
    interrupts: Interrupts
    hook: TurnHook | HookFactory | None = None
    leases: Leases | None = None


@dataclass
class _Step:
    """What follows a turn the hook saw: events to send, then the next turn or the ending."""

    events: list[Event] = field(default_factory=list)
    turn: _Turn | None = None
    terminal: Event | None = None  # instead of the turn's own (a later turn failed to open)


@dataclass
class _Turn:
    deployment: ResolvedDeployment
    provider: Provider
    stream: UpstreamStream
    events: AsyncIterator[Event]
    # What was read before the turn was accepted: its lifecycle events and its first output event.
    head: list[Event]
    ended: bool = False  # the upstream's stream ended within `head`


class ResponseRun:
    def __init__(self, plan: Plan, deps: RunDeps) -> None:
        self.plan = plan
        self.deps = deps
        self.response: response_pb2.Response | None = None  # the final one, once the run ended
        # Why the run ended early, after its first event (the stream says so with response.failed).
        self.error: GatewayError | None = None
        self.task: asyncio.Task[None] | None = None
        self._turn: _Turn | None = None
        self._handle = RunHandle()
        self._log: list[Event] = []  # a background run's events, for its readers
        self._changed = asyncio.Event()
        self.done = False
        hook = deps.hook
        if isinstance(hook, HookFactory):
            hook = hook.for_run(plan)
        self.hook: TurnHook | None = hook
        self._tools = hook if hook is not None and isinstance(hook, RunTools) else None

    # --- opening a turn -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the first upstream turn (the router retries and falls back); failures raise."""
        self._turn = await self._open_turn(None)

    async def _open_turn(self, request: request_pb2.CreateResponseRequest | None) -> _Turn:
        async def attempt(deployment: ResolvedDeployment, _: Provider) -> _Turn:
            return await self._attempt(deployment, request)

        return await self.deps.router.first_success(self.plan.request.model, attempt, self.plan.ctx.record)

    async def _attempt(
        self, deployment: ResolvedDeployment, request: request_pb2.CreateResponseRequest | None
    ) -> _Turn:
        """One upstream call, up to its first event: failures up to here can be retried elsewhere."""
        provider = self.deps.providers.for_request(deployment, self.plan.request)
        if request is None:
            request = await upstream_request(self.plan, self.deps.store, deployment, provider)
            if self._tools is not None:
                request = await self._tools.prepare(self, deployment, provider, request)
        stream = provider.open(ProviderCall(request, deployment, timeout=self.plan.ctx.remaining()))
        events: AsyncIterator[Event] = aiter(stream)
        if self._tools is not None:
            events = self._tools.rewrite(events)
        # A foreground turn is accepted at its first output event: a stream that fails before any
        # output (after `response.created`, say) is retried or falls back, and the client never knows.
        # A background one at its first event, as its create returns as soon as it is queued.
        wait_for_output = not self.plan.request.background
        head: list[Event] = []
        ended = False
        try:
            while True:
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    if not head:
                        raise GatewayError(
                            Reason.UPSTREAM_ERROR, "The upstream sent an empty stream."
                        ) from None
                    ended = True  # `_upstream` ends it with a well-formed failure
                    break
                head.append(event)
                if not (wait_for_output and ev.is_lifecycle(event) and not ev.is_terminal(event)):
                    break
        except BaseException:
            await stream.aclose()
            raise
        self.plan.ctx.add_dropped(stream.dropped)
        return _Turn(deployment, provider, stream, events, head, ended)

    # --- the events -----------------------------------------------------------------------------

    async def events(self) -> AsyncGenerator[Event, None]:
        """Number, record and relay the events; the terminal one only after the store has it."""
        turn = self._turn
        assert turn is not None, "start() first"
        plan, deps = self.plan, self.deps
        self.error = None
        native = keeps_state(turn.provider)
        shell = (
            response_pb2.Response()
            if native
            else response_shell(plan.request, turn.deployment.upstream_model)
        )
        asm = Assembler(shell, translated=not native)
        recorder = (
            Recorder(
                deps.store,
                plan.items,
                deployment=turn.deployment.model_name,
                upstream_id=upstream_key(turn.deployment),
                log_events=plan.log_events,
                flush_seconds=plan.flush_seconds,
                leases=deps.leases,
                forget=plan.forget,
                key_id=plan.ctx.principal.key_id,
            )
            if plan.store
            else None
        )
        # A unary call shows nothing until its fold ends, and an attempt that broke off is retried or
        # answered with a status: only what the client gets is stored (one record, not one per attempt).
        deferred = plan.mode == "unary" and not plan.log_events
        handle = self._handle = deps.interrupts.open(self._handle)
        finished = False
        # Read once, not per event (the loop below runs for every delta).
        background, hooked = plan.request.background, self.hook is not None
        lifecycle_arms, terminal_arms = ev.LIFECYCLE_ARMS, ev.TERMINAL_ARMS
        try:
            while True:
                terminal: Event | None = None
                async for event in self._upstream(turn, asm, handle):
                    arm = event.WhichOneof("kind")
                    lifecycle = arm in lifecycle_arms
                    if lifecycle and asm.later_turn and arm not in terminal_arms:
                        continue  # one response: a later turn's created / in_progress are not news
                    if hooked and arm in terminal_arms and self.error is None:
                        terminal = event
                        break
                    asm.accept(event, arm)
                    if native and lifecycle:
                        _echo_gateway_fields(asm.response, plan.request)
                    elif background:
                        asm.response.background = True
                    if recorder is not None and not deferred and not recorder.started and asm.response.id:
                        recorder.start(asm.response)
                        if plan.request.background:
                            await recorder.check()  # refused, not acknowledged and lost, if the store fails
                    if asm.terminal_type is not None:
                        terminal = event
                        break
                    if recorder is not None:
                        recorder.event(event)
                    yield event
                if terminal is None:
                    # Interrupted by a cancel: the response ends `cancelled`, with no terminal event.
                    return
                if asm.terminal_type is None:
                    # Held back for the hook: another turn may follow, with items of the gateway's own.
                    step = await self._continue(asm, terminal)
                    for event in step.events:
                        if recorder is not None:
                            recorder.event(event)
                        yield event
                    if step.turn is not None:
                        turn = step.turn
                        continue
                    asm.accept(step.terminal or terminal)
                    terminal = step.terminal or terminal
                    _echo_gateway_fields(asm.response, plan.request)
                accounting.settle(plan, turn.deployment, asm.response, terminal, deps.router.prices)
                if recorder is not None and not (deferred and self.error is not None):
                    await recorder.finish(asm.response, terminal)
                    if recorder.failure is not None:
                        # Not stored: the client must not be told it was (a unary call gets the 503).
                        self.error = recorder.failure
                        terminal = await recorder.failed_terminal(asm, terminal)
                finished = True
                self.response = asm.response
                accounting.observe(plan, asm.response)
                yield terminal
                await _drain(turn.events)
                return
        finally:
            try:
                await turn.stream.aclose()
                if not finished:
                    self.response = asm.broken_off(response_pb2.RESPONSE_STATUS_CANCELLED)
                    if recorder is not None and recorder.started:
                        # The client went away, or the run was cancelled: keep what was produced, say
                        # so. The write must land even if this task is cancelled again, and before the
                        # store closes.
                        write = asyncio.ensure_future(recorder.finish(self.response, None))
                        deps.interrupts.keep(write)
                        await asyncio.shield(write)
            finally:
                deps.interrupts.close(handle)

    async def _upstream(self, turn: _Turn, asm: Assembler, handle: RunHandle) -> AsyncGenerator[Event, None]:
        """A turn's events, ended by a well-formed `response.failed` if the upstream breaks off or the
        run is interrupted by a shutdown; a cancel just ends it."""
        for event in turn.head:
            yield event
        task = asyncio.current_task()
        while handle.reason is None and not turn.ended:
            handle.waiting = task
            try:
                event = await anext(turn.events)
            except StopAsyncIteration:
                break
            except GatewayError as e:
                self.error = e
                yield asm.failure(_failure_code(e), e.message)
                return
            except asyncio.CancelledError:
                if not handle.take_cancel():
                    raise
                break
            finally:
                handle.waiting = None
            yield event
        if handle.reason is not None:
            if handle.cancelled:
                return
            self.error = GatewayError(Reason.SHUTTING_DOWN, handle.reason)
            yield asm.failure("server_error", handle.reason)
            return
        if asm.saw_error is not None:
            err = getattr(asm.saw_error, ev.ARM_OF_TAG[ev.ERROR])
            yield asm.failure("server_error", err.message or "The upstream reported an error.")
        else:
            yield asm.failure(
                "server_error", "The upstream ended the stream before the response was complete."
            )

    async def _continue(self, asm: Assembler, terminal: Event) -> _Step:
        """After a turn, ask the hook: the gateway's own item events (numbered), then the next turn
        opened, or the terminal event that ends the response."""
        assert self.hook is not None and self._turn is not None
        response = asm.end_turn(terminal)
        more = None
        if response.status == response_pb2.RESPONSE_STATUS_COMPLETED:
            more = await self.hook.after_turn(self, response)
        if more is None:
            return _Step()
        events = [asm.accept(e) for e in more.events]
        events += [e for item in more.items for e in asm.own_item(item)]
        if more.request is None:
            return _Step(events)
        await _drain(self._turn.events)
        await self._turn.stream.aclose()
        try:
            self._turn = await self._open_turn(more.request)
        except GatewayError as e:
            # Events went out already: a failure now ends the stream with its terminal event.
            self.error = e
            return _Step(events, terminal=asm.failure(_failure_code(e), e.message))
        asm.begin_turn()
        return _Step(events, turn=self._turn)

    # --- unary: the fold ------------------------------------------------------------------------

    async def fold(self) -> response_pb2.Response:
        """A unary call: the upstream's own unary call where it has one, else the fold of the events.
        Nothing reached a client before it returns, so any failure is a status the router may retry."""
        plan = self.plan

        async def attempt(deployment: ResolvedDeployment, _: Provider) -> response_pb2.Response:
            provider = self.deps.providers.for_request(deployment, plan.request)
            if isinstance(provider, SupportsCreate) and self.hook is None:
                return await self._create(deployment, provider)
            self._turn = await self._attempt(deployment, None)
            final: response_pb2.Response | None = None
            async for event in self.events():
                final = ev.response_of(event) or final
            if self.error is not None:
                raise self.error
            assert final is not None
            return final

        return await self.deps.router.first_success(plan.request.model, attempt, plan.ctx.record)

    async def _create(
        self, deployment: ResolvedDeployment, provider: SupportsCreate
    ) -> response_pb2.Response:
        plan = self.plan
        request = await upstream_request(plan, self.deps.store, deployment, provider)
        response = await provider.create(ProviderCall(request, deployment, timeout=plan.ctx.remaining()))
        accounting.settle(plan, deployment, response, None, self.deps.router.prices)
        if plan.store:
            if not response.id:
                raise GatewayError(Reason.UPSTREAM_ERROR, "The upstream returned a response without an id.")
            await self.deps.store.put(
                StoredResponse(
                    response,
                    plan.items,
                    deployment.model_name,
                    upstream_key(deployment),
                    key_id=plan.ctx.principal.key_id,
                )
            )
        self.response = response
        accounting.observe(plan, response)
        return response

    # --- background: a task, and its readers -----------------------------------------------------

    async def spawn(self) -> response_pb2.Response:
        """Run in a task of its own; returns the first event's response once the store has it (a
        background response the store refuses is refused, not acknowledged and lost)."""
        ready: asyncio.Future[response_pb2.Response] = asyncio.get_running_loop().create_future()

        async def drive() -> None:
            try:
                async for event in self.events():
                    self._log.append(event)
                    self._changed.set()
                    if not ready.done():
                        shown = ev.response_of(event)
                        ready.set_result(shown if shown is not None else response_pb2.Response())
            except GatewayError as e:
                if ready.done():
                    log.warning("background response failed: %r", e)
                else:
                    ready.set_exception(e)
            finally:
                self.done = True
                self._changed.set()
                if not ready.done():
                    ready.set_exception(
                        GatewayError(Reason.UPSTREAM_ERROR, "The response ended before it began.")
                    )

        self.task = asyncio.create_task(drive())
        return await ready

    async def follow(self, after: int = -1) -> AsyncGenerator[Event, None]:
        """A background run's events with sequence_number > after, then each new one, until it ends."""
        i = max(0, after + 1)
        while True:
            while i < len(self._log):
                yield self._log[i]
                i += 1
            if self.done:
                return
            self._changed.clear()
            await self._changed.wait()

    async def cancel(self) -> response_pb2.Response:
        """End the run `cancelled` unless it already ended; returns its final response, as stored."""
        if not self.done:
            self._handle.interrupt(CANCELLED_MESSAGE, cancel=True)
            if self.task is not None:
                await asyncio.wait([self.task])
        assert self.response is not None
        return self.response


def _echo_gateway_fields(response: response_pb2.Response, request: request_pb2.CreateResponseRequest) -> None:
    """What the gateway handled itself, so the upstream never saw it (background runs here; a
    conversation replayed rather than continued by id), as the client asked for it."""
    if request.background:
        response.background = True
    if request.previous_response_id and not response.previous_response_id:
        response.previous_response_id = request.previous_response_id


def _failure_code(error: GatewayError) -> str:
    return "rate_limit_exceeded" if error.reason == Reason.RATE_LIMITED else "server_error"


async def _drain(events: AsyncIterator[Event], seconds: float = 5.0) -> None:
    """Read the upstream to its end after the terminal event (its last bytes follow at once), so the
    connection goes back to the pool: closing a response half-read would throw the connection away."""
    with contextlib.suppress(TimeoutError, GatewayError):
        async with asyncio.timeout(seconds):
            async for _ in events:
                pass
