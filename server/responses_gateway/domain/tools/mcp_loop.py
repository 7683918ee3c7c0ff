"""The gateway's MCP loop: a request's `mcp` tools run by the gateway, across the upstream turns of
one response (a `TurnHook` of domain/run.py).

1. `prepare` (before the first upstream turn): each `mcp` tool the gateway runs is checked
   (`mcp_policy`), its server's tools listed — unless the conversation already holds an
   `mcp_list_tools` item for its label — filtered by `allowed_tools`, and offered to the model as
   function tools. Approval answers in the input are acted on (an approved call runs now, a refused one
   is reported to the model), and the conversation's `mcp_*` items become the function_call /
   function_call_output pairs the upstream understands.
2. `rewrite` (each turn's events, before the assembler): the `mcp_list_tools` items (and approved
   calls) go out after the first turn's lifecycle events; a function_call of an MCP-derived function
   reaches the client as an `mcp_call` item with `response.mcp_call.*` / `mcp_call_arguments.*`
   events (its `done` held back until it ran), or, when approval is needed, as an
   `mcp_approval_request` item. Other events pass as they are.
3. `after_turn`: the calls run (concurrently, each bounded in time and size); their items complete;
   the next upstream turn gets the conversation with the calls and results — until the model answers,
   asks for approval, calls a client tool, or `max_tool_calls` / `gateway_settings.mcp.max_rounds`
   ends the response.

Where it runs: every `mcp` tool on providers without native MCP; on OpenAI-native deployments only
registered servers and deployments with `mcp_execution: gateway` (otherwise OpenAI runs the tool and
its events are relayed as they come).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from responses_gateway.config.models import McpServerConfig, McpSettings
from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.contract import events as ev
from responses_gateway.contract.ids import new_id
from responses_gateway.contract.items import input_items
from responses_gateway.domain.history import history
from responses_gateway.domain.plan import Plan, keeps_state
from responses_gateway.domain.run import Continuation
from responses_gateway.domain.tools import mcp_items as mi
from responses_gateway.domain.tools.mcp_failure import McpFailure, protocol_failure
from responses_gateway.domain.tools.mcp_policy import REGISTERED, McpPolicy, Target, check_address
from responses_gateway.errors import GatewayError, Reason, echo
from responses_gateway.v1 import items_pb2, request_pb2, response_pb2, tools_pb2

if TYPE_CHECKING:
    from responses_gateway.domain.run import ResponseRun

Event = ev.Event
_ADDED = ev.ARM_OF_TAG[ev.ITEM_ADDED]
_DONE = ev.ARM_OF_TAG[ev.ITEM_DONE]
_ARGS_DELTA = ev.ARM_OF_TAG["response.function_call_arguments.delta"]
_ARGS_DONE = ev.ARM_OF_TAG["response.function_call_arguments.done"]
_COMPLETED = ev.ARM_OF_TAG[ev.COMPLETED]
_ITEM_ARMS = (
    frozenset(
        f.name
        for f in Event.DESCRIPTOR.oneofs_by_name["kind"].fields
        if f.message_type is not None and "output_index" in f.message_type.fields_by_name
    )
    - ev.LIFECYCLE_ARMS
)
# Items a client answers itself: when the model calls one, the response ends for the client to act.
_CLIENT_CALLS = frozenset({"function_call", "custom_tool_call", "computer_call", "local_shell_call"})
INVALID_ARGUMENTS = -32602


class McpTools:
    """The service's hook: one `McpRun` for each request with `mcp` tools, none for the others."""

    def __init__(self, settings: McpSettings, servers: Mapping[str, McpServerConfig]) -> None:
        self.settings = settings
        self.policy = McpPolicy(settings, servers)
        if servers or settings.allowed_server_urls:
            # A gateway that can reach MCP servers loads the SDK now (~0.3 s), not in its first MCP
            # call's event loop turn; one that cannot never does (mcp_failure.py).
            import responses_gateway.domain.tools.mcp_client  # noqa: F401

    def for_run(self, plan: Plan) -> McpRun | None:
        if any(t.WhichOneof("kind") == "mcp" for t in plan.request.tools):
            return McpRun(self, plan)
        # No `mcp` tool, but a conversation with `mcp_*` items (the input, or the turn it continues):
        # a provider without MCP gets them as text (`prepare`).
        prev = plan.previous
        seen = [*plan.items, *(prev.input_items if prev else ()), *(prev.response.output if prev else ())]
        return McpRun(self, plan) if any(i.WhichOneof("kind") in mi.ITEM_KINDS for i in seen) else None


@dataclass
class _Server:
    """One `mcp` tool of the request that the gateway runs."""

    label: str
    mcp: tools_pb2.McpTool
    targets: dict[str, Target]  # by tool-name prefix ("" for a single server)

    def resolve(self, name: str) -> tuple[Target, str] | None:
        """The server and its own name for a listed tool name."""
        if "" in self.targets:
            return self.targets[""], name
        for prefix, target in self.targets.items():
            if name.startswith(f"{prefix}-") and len(name) > len(prefix) + 1:
                return target, name[len(prefix) + 1 :]
        return None


@dataclass
class _Offer:
    function: str  # the name the model sees
    server: _Server
    tool: str  # the name the client sees (mcp_call.name)
    target: Target
    real: str  # the name the MCP server knows
    approval: bool


@dataclass
class _Call:
    offer: _Offer
    mcp_id: str
    index: int  # the output_index its events carry (turn-relative, as the assembler expects)
    arguments: str = ""
    result: items_pb2.McpCall | None = None

    def item(self) -> items_pb2.McpCall:
        return items_pb2.McpCall(
            id=self.mcp_id,
            server_label=self.offer.server.label,
            name=self.offer.tool,
            arguments=self.arguments,
        )


@dataclass
class McpRun:
    tools: McpTools
    plan: Plan
    active: bool = False
    native: bool = False
    offers: dict[str, _Offer] = field(default_factory=dict)
    prelude: list[items_pb2.Item] = field(default_factory=list)  # before the first turn's output
    request: request_pb2.CreateResponseRequest | None = None  # the first upstream request
    base: list[items_pb2.Item] = field(default_factory=list)  # its input
    transcript: list[items_pb2.Item] = field(default_factory=list)  # what later turns add to it
    rounds: int = 0
    calls_made: int = 0
    _first_turn: bool = True
    _turn_calls: list[_Call] = field(default_factory=list)
    _turn_output: list[items_pb2.Item | _Call] = field(default_factory=list)
    # Kept across attempts (the router may open the first turn again elsewhere): a listing is not
    # repeated, and an approved call never runs twice.
    _listings: dict[str, items_pb2.Item] = field(default_factory=dict)
    _approved: dict[str, items_pb2.McpCall] = field(default_factory=dict)

    @property
    def settings(self) -> McpSettings:
        return self.tools.settings

    # --- 1. the request ---------------------------------------------------------------------------

    async def prepare(
        self,
        run: ResponseRun,
        deployment: ResolvedDeployment,
        provider: object,
        request: request_pb2.CreateResponseRequest,
    ) -> request_pb2.CreateResponseRequest:
        self.native = keeps_state(provider)
        self.offers, self.prelude, self.transcript = {}, [], []
        self.rounds, self.calls_made, self._first_turn = 0, 0, True
        servers: dict[str, _Server] = {}
        kept: list[tools_pb2.Tool] = []
        for i, tool in enumerate(request.tools):
            if tool.WhichOneof("kind") != "mcp":
                kept.append(tool)
                continue
            m = tool.mcp
            registered = m.HasField("server_url") and m.server_url.startswith(REGISTERED)
            if self.native and not registered and deployment.mcp_execution != "gateway":
                kept.append(tool)  # OpenAI runs it
                continue
            if m.server_label in servers:
                raise GatewayError(
                    Reason.INVALID_REQUEST,
                    f"Duplicate MCP server_label '{echo(m.server_label)}'.",
                    param=f"tools[{i}].server_label",
                )
            targets = self.tools.policy.targets(m, f"tools[{i}]")
            for target in targets.values():
                await check_address(target, f"tools[{i}].server_url")
            servers[m.server_label] = _Server(m.server_label, m, targets)
        self.active = bool(servers)
        if not servers:
            if self.native or not any(i.WhichOneof("kind") in mi.ITEM_KINDS for i in input_items(request)):
                return request
            # MCP items of an earlier turn, no MCP tool now: the conversation as text, since the
            # provider knows no such items and no tool of theirs is offered to call.
            bare = request_pb2.CreateResponseRequest()
            bare.CopyFrom(request)
            bare.ClearField("input")
            bare.input.items.items.extend(self._upstream_items(input_items(request), {}, {}))
            return bare
        out = request_pb2.CreateResponseRequest()
        out.CopyFrom(request)
        items = input_items(out)
        if out.previous_response_id and run.plan.previous is not None:
            # A native upstream holds only its own first turn of a response the gateway continued
            # itself: the gateway sends the whole conversation instead.
            items = [*await history(run.deps.store, run.plan.previous), *items]
            out.ClearField("previous_response_id")

        listed: dict[str, items_pb2.McpListTools] = {}
        for item in items:
            if item.WhichOneof("kind") == "mcp_list_tools" and item.mcp_list_tools.server_label in servers:
                listed[item.mcp_list_tools.server_label] = item.mcp_list_tools
        fresh = [s for s in servers.values() if s.label not in listed]
        for s, got in zip(fresh, await asyncio.gather(*(self._list(s) for s in fresh)), strict=True):
            self.prelude.append(got)
            listed[s.label] = got.mcp_list_tools

        taken = {t.function.name for t in kept if t.WhichOneof("kind") == "function"}
        offered: list[tools_pb2.Tool] = []
        for s in servers.values():
            for lt in listed[s.label].tools:
                where = s.resolve(lt.name)
                if where is None or not mi.allowed(s.mcp, lt):
                    continue
                name = mi.function_name(s.label, lt.name, taken)
                taken.add(name)
                self.offers[name] = _Offer(name, s, lt.name, where[0], where[1], mi.needs_approval(s.mcp, lt))
                offered.append(mi.function_tool(name, lt))
        del out.tools[:]
        out.tools.extend([*kept, *offered])
        self._tool_choice(out, servers)
        # The gateway counts tool calls across the turns itself (`_run_calls`): the upstream must not
        # cut a turn's calls short on its own.
        out.ClearField("max_tool_calls")

        decided = await self._answer_approvals(run.plan.items, items, servers)
        self.base = self._upstream_items(items, servers, decided)
        out.ClearField("input")
        out.input.items.items.extend(self.base)
        self.request = out
        return out

    async def _list(self, server: _Server) -> items_pb2.Item:
        if server.label in self._listings:
            return self._listings[server.label]
        item = items_pb2.Item()
        lt = item.mcp_list_tools
        lt.id, lt.server_label = new_id("mcpl"), server.label
        # The SDK loads with the first run that calls a server (mcp_failure.py says why).
        from responses_gateway.domain.tools.mcp_client import list_tools

        s = self.settings
        try:
            pages = await asyncio.gather(
                *(list_tools(t, s.call_timeout_seconds, s.max_output_bytes) for t in server.targets.values())
            )
        except McpFailure as e:
            lt.error = str(e)
        else:
            for prefix, tools in zip(server.targets, pages, strict=True):
                for tool in tools:
                    annotations = (
                        tool.annotations.model_dump(by_alias=True, exclude_none=True)
                        if tool.annotations
                        else None
                    )
                    name = f"{prefix}-{tool.name}" if prefix else tool.name
                    listed = mi.listed_tool(name, tool.description, tool.input_schema, annotations)
                    if mi.allowed(server.mcp, listed):  # as OpenAI lists them: the allowed tools only
                        lt.tools.append(listed)
        self._listings[server.label] = item
        return item

    def _tool_choice(self, out: request_pb2.CreateResponseRequest, servers: dict[str, _Server]) -> None:
        """`{"type": "mcp", server_label, name}` becomes the function it names, or `required`."""
        if not out.HasField("tool_choice") or out.tool_choice.WhichOneof("kind") != "mcp":
            return
        choice = out.tool_choice.mcp
        if choice.server_label not in servers:
            return
        named = [
            o for o in self.offers.values() if o.server.label == choice.server_label and o.tool == choice.name
        ]
        out.ClearField("tool_choice")
        if choice.HasField("name") and named:
            out.tool_choice.function.name = named[0].function
        else:
            out.tool_choice.mode = tools_pb2.TOOL_CHOICE_MODE_REQUIRED

    async def _answer_approvals(
        self, given: list[items_pb2.Item], items: list[items_pb2.Item], servers: dict[str, _Server]
    ) -> dict[str, str]:
        """The approval answers of this request (not the history's): approved calls run now (their
        mcp_call items lead the output); returns what the model is told for each."""
        requests = {
            i.mcp_approval_request.id: i.mcp_approval_request
            for i in items
            if i.WhichOneof("kind") == "mcp_approval_request"
        }
        decided: dict[str, str] = {}
        for item in given:
            if item.WhichOneof("kind") != "mcp_approval_response":
                continue
            answer = item.mcp_approval_response
            rid = answer.approval_request_id
            req = requests.get(rid)
            if req is None:
                raise GatewayError(
                    Reason.INVALID_REQUEST,
                    f"No mcp_approval_request with id '{echo(rid)}' in this conversation.",
                    param="input",
                )
            if req.server_label not in servers:
                continue  # a server the upstream runs: the upstream answers it
            offer = next(
                (
                    o
                    for o in self.offers.values()
                    if o.server.label == req.server_label and o.tool == req.name
                ),
                None,
            )
            if offer is None:
                raise GatewayError(
                    Reason.INVALID_REQUEST,
                    f"The approved tool '{echo(req.name)}' is not offered by the MCP server "
                    f"'{echo(req.server_label)}' in this request's tools.",
                    param="tools",
                )
            if not answer.approve:
                why = f": {answer.reason}" if answer.HasField("reason") and answer.reason else "."
                decided[rid] = f"The user refused this tool call{why}"
                continue
            if rid not in self._approved:
                call = items_pb2.McpCall(
                    id=new_id("mcp"),
                    server_label=req.server_label,
                    name=req.name,
                    arguments=req.arguments,
                    approval_request_id=rid,
                )
                await self._run(offer, call)
                self._approved[rid] = call
            call = self._approved[rid]
            self.calls_made += 1
            self.prelude.append(mi.call_item(call))
            decided[rid] = mi.call_result_text(call)
        return decided

    def _function_of(self, label: str, tool: str) -> str:
        for o in self.offers.values():
            if o.server.label == label and o.tool == tool:
                return o.function
        return mi.function_name(label, tool, set())

    def _upstream_items(
        self, items: list[items_pb2.Item], servers: dict[str, _Server], decided: dict[str, str]
    ) -> list[items_pb2.Item]:
        """The conversation as the upstream sees it: listings dropped, calls as function pairs,
        approval requests answered (refused ones told), unanswered ones left out."""
        refused_before = {
            i.mcp_approval_response.approval_request_id
            for i in items
            if i.WhichOneof("kind") == "mcp_approval_response" and not i.mcp_approval_response.approve
        }
        out: list[items_pb2.Item] = []
        for item in items:
            kind = item.WhichOneof("kind")
            label = (
                getattr(item, kind).server_label
                if kind in ("mcp_list_tools", "mcp_call", "mcp_approval_request")
                else None
            )
            if label is not None and label not in servers:
                if self.native:
                    out.append(item)  # the upstream runs that server
                else:
                    out.extend(mi.as_text(item))  # a server no longer in the request's tools
            elif kind == "mcp_list_tools":
                continue
            elif kind == "mcp_call":
                c = item.mcp_call
                out.extend(
                    mi.function_pair(
                        c.id, self._function_of(label or "", c.name), c.arguments, mi.call_result_text(c)
                    )
                )
            elif kind == "mcp_approval_request":
                r = item.mcp_approval_request
                text = decided.get(r.id)
                if text is None and r.id in refused_before:
                    text = "The user refused this tool call."
                if text is not None:
                    out.extend(
                        mi.function_pair(r.id, self._function_of(r.server_label, r.name), r.arguments, text)
                    )
            elif kind == "mcp_approval_response":
                continue
            else:
                out.append(item)
        return out

    # --- 2. the events ----------------------------------------------------------------------------

    def rewrite(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        """Each turn's events; untouched (no extra stage at all) when the gateway runs no MCP tool."""
        return self._rewrite(events) if self.active else events

    def _prelude_events(self) -> list[Event]:
        out: list[Event] = []
        for n, item in enumerate(self.prelude):
            if item.WhichOneof("kind") == "mcp_list_tools":
                out.extend(mi.list_tools_events(item, n))
            else:
                call = item.mcp_call
                out.extend(mi.call_started(call, n))
                out.append(mi.arguments_done(call.id, n, call.arguments))
                out.extend(mi.call_finished(call, n))
        return out

    async def _rewrite(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        prelude = self._prelude_events() if self._first_turn else []
        shift = len(self.prelude) if self._first_turn else 0
        self._first_turn = False
        self._turn_calls, self._turn_output = [], []
        calls: dict[str, _Call] = {}  # by the upstream's function_call item id
        ended = False
        async for event in events:
            arm = event.WhichOneof("kind")
            if arm in ev.LIFECYCLE_ARMS:
                if prelude and arm in ev.TERMINAL_ARMS:
                    for e in prelude:
                        yield e
                    prelude = []
                ended = ended or arm in ev.TERMINAL_ARMS
                if arm in ev.TERMINAL_ARMS and arm != _COMPLETED:
                    for e in self._cut_short(ev.TAG_OF_ARM[arm].removeprefix("response.")):
                        yield e
                if self.native:
                    # What the client asked for, not the functions the upstream was offered.
                    shown = getattr(event, arm).response
                    del shown.tools[:]
                    shown.tools.extend(self.plan.request.tools)
                yield event
                continue
            if prelude:
                for e in prelude:
                    yield e
                prelude = []
            if arm is None or arm not in _ITEM_ARMS:
                yield event
                continue
            body = getattr(event, arm)
            if shift:
                body.output_index += shift
            if arm == _ADDED:
                item = body.item
                offer = (
                    self.offers.get(item.function_call.name)
                    if item.WhichOneof("kind") == "function_call"
                    else None
                )
                if offer is None:
                    yield event
                    continue
                call = _Call(offer, new_id("mcpr" if offer.approval else "mcp"), body.output_index)
                calls[item.function_call.id or item.function_call.call_id] = call
                self._turn_calls.append(call)
                self._turn_output.append(call)
                if not offer.approval:
                    for e in mi.call_started(call.item(), call.index):
                        yield e
                continue
            if arm in (_ARGS_DELTA, _ARGS_DONE) and body.item_id in calls:
                call = calls[body.item_id]
                if arm == _ARGS_DONE:
                    call.arguments = body.arguments
                if not call.offer.approval:
                    yield (
                        mi.arguments_delta(call.mcp_id, call.index, body.delta)
                        if arm == _ARGS_DELTA
                        else mi.arguments_done(call.mcp_id, call.index, body.arguments)
                    )
                continue
            if arm == _DONE:
                item = body.item
                key = (
                    (item.function_call.id or item.function_call.call_id)
                    if item.WhichOneof("kind") == "function_call"
                    else ""
                )
                if key in calls:
                    call = calls[key]
                    call.arguments = item.function_call.arguments or call.arguments
                    if call.offer.approval:
                        req = items_pb2.Item()
                        req.mcp_approval_request.id = call.mcp_id
                        req.mcp_approval_request.server_label = call.offer.server.label
                        req.mcp_approval_request.name = call.offer.tool
                        req.mcp_approval_request.arguments = call.arguments
                        yield ev.item_added(req, call.index)
                        yield ev.item_done(req, call.index)
                    continue  # an auto-run call is done once it ran (after the turn)
                kept = items_pb2.Item()
                kept.CopyFrom(item)
                self._turn_output.append(kept)
            yield event
        if not ended:
            # The upstream broke off without a terminal event (the run ends the response `failed`).
            for e in self._cut_short("failed"):
                yield e

    def _cut_short(self, status: str) -> list[Event]:
        """A turn that ended other than `completed` (max_output_tokens, a failure) runs none of its
        calls: each auto-run `mcp_call` still open ends failed with an error saying why, as OpenAI
        ends them, instead of staying `in_progress` in the output."""
        out: list[Event] = []
        for call in self._turn_calls:
            if call.offer.approval or call.result is not None:
                continue
            call.result = call.item()
            why = f"The tool was not called: the response ended `{status}` before the model's turn ended."
            call.result.error.CopyFrom(protocol_failure(-32000, why).error)
            out.extend(mi.call_finished(call.result, call.index))
        return out

    # --- 3. after the turn ------------------------------------------------------------------------

    async def after_turn(self, run: ResponseRun, response: response_pb2.Response) -> Continuation | None:
        if not self.active:
            return None
        if not self._turn_calls:
            # No MCP call this turn: its items still join the conversation, which another of the
            # gateway's own tools (a tool search, compose.py) may continue with `next_request()`.
            self.transcript.extend(x for x in self._turn_output if isinstance(x, items_pb2.Item))
            return None
        request = self.plan.request
        auto = [c for c in self._turn_calls if not c.offer.approval]
        limit = request.max_tool_calls if request.HasField("max_tool_calls") else None
        budget = len(auto) if limit is None else max(0, limit - self.calls_made)
        now, skipped = auto[:budget], auto[budget:]
        for c in now:
            c.result = c.item()
        await asyncio.gather(*(self._run(c.offer, c.result) for c in now if c.result is not None))
        for c in skipped:
            c.result = c.item()
            c.result.error.CopyFrom(
                protocol_failure(-32000, f"Not run: max_tool_calls ({limit}) was reached.").error
            )
        self.calls_made += len(now)
        events = [e for c in auto if c.result is not None for e in mi.call_finished(c.result, c.index)]

        client_calls = False
        for x in self._turn_output:
            if isinstance(x, _Call):
                if x.result is not None:
                    self.transcript.extend(
                        mi.function_pair(
                            x.mcp_id, x.offer.function, x.arguments, mi.call_result_text(x.result)
                        )
                    )
            else:
                client_calls = client_calls or x.WhichOneof("kind") in _CLIENT_CALLS
                self.transcript.append(x)
        self.rounds += 1
        waiting = len(auto) < len(self._turn_calls)  # approval requests: the client answers first
        spent = limit is not None and self.calls_made >= limit
        if waiting or client_calls or spent or not auto or self.rounds >= self.settings.max_rounds:
            return Continuation(events=events)
        return Continuation(events=events, request=self.next_request())

    def next_request(self) -> request_pb2.CreateResponseRequest:
        """The next upstream turn: the first one's request, with the conversation so far."""
        assert self.request is not None
        nxt = request_pb2.CreateResponseRequest()
        nxt.CopyFrom(self.request)
        nxt.ClearField("input")
        nxt.input.items.items.extend([*self.base, *self.transcript])
        return nxt

    async def _run(self, offer: _Offer, call: items_pb2.McpCall) -> None:
        """Run one call; its output or error lands on `call`."""
        try:
            arguments: Any = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            call.error.CopyFrom(
                protocol_failure(INVALID_ARGUMENTS, "The tool's arguments are not a JSON object.").error
            )
            return
        from responses_gateway.domain.tools.mcp_client import call_tool

        s = self.settings
        try:
            call.output = await call_tool(
                offer.target, offer.real, arguments, s.call_timeout_seconds, s.max_output_bytes
            )
        except McpFailure as e:
            call.error.CopyFrom(e.error)
