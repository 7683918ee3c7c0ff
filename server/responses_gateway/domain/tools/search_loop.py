"""The gateway's tool search: `tool_search` with `defer_loading` tools on providers without it (a
`RunTools` hook of domain/run.py, like the MCP loop, and composed with it in `compose.py`).

1. `prepare`: the deferred tools (`defer_loading: true`, at the top level or inside a namespace) are
   held back, and `tool_search` becomes a function whose description lists what can be searched
   (namespaces' and deferred functions' names and descriptions, as OpenAI shows them). Tools that
   the conversation's `tool_search_output` items loaded are offered again; those items, and the
   `tool_search_call`s before them, become function_call / function_call_output pairs.
2. `rewrite`: a call of the search function reaches the client as a `tool_search_call` item (added,
   then done with its arguments; the function's argument deltas are not shown).
3. `after_turn`: a server search runs here (`search_items.Index`, BM25), its `tool_search_output`
   item goes out, and the next upstream turn is offered the loaded tools (appended after the others,
   as OpenAI injects them at the end), with the search and its result in the conversation — one
   response, several upstream turns. After `MAX_SEARCHES` searches the function is no longer
   offered, so the model answers. A client search (`execution: client`) ends the response with the
   `tool_search_call` for the client to answer with a `tool_search_output`, as on OpenAI.

OpenAI-native deployments run tool search themselves: nothing here happens for them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.contract import events as ev
from responses_gateway.contract.ids import new_id
from responses_gateway.contract.items import input_items
from responses_gateway.domain.plan import Plan, keeps_state
from responses_gateway.domain.run import Continuation
from responses_gateway.domain.tools import search_items as si
from responses_gateway.v1 import items_pb2, request_pb2, response_pb2, tools_pb2

if TYPE_CHECKING:
    from responses_gateway.domain.run import ResponseRun

Event = ev.Event
MAX_SEARCHES = 5  # searches in one response before the model must answer with what it has
_ADDED = ev.ARM_OF_TAG[ev.ITEM_ADDED]
_DONE = ev.ARM_OF_TAG[ev.ITEM_DONE]
_ARGS = frozenset(
    {
        ev.ARM_OF_TAG["response.function_call_arguments.delta"],
        ev.ARM_OF_TAG["response.function_call_arguments.done"],
    }
)
_CLIENT_CALLS = frozenset({"function_call", "custom_tool_call", "computer_call", "local_shell_call"})
_ITEMS = frozenset({"tool_search_call", "tool_search_output"})


def has_search_items(items: list[items_pb2.Item]) -> bool:
    return any(i.WhichOneof("kind") in _ITEMS for i in items)


class ToolSearchTools:
    """One `SearchRun` for a request with `tool_search` (or tool search items in its input)."""

    def for_run(self, plan: Plan) -> SearchRun | None:
        if any(t.WhichOneof("kind") == "tool_search" for t in plan.request.tools):
            return SearchRun(plan)
        previous = plan.previous
        seen = [
            *plan.items,
            *(previous.input_items if previous else []),
            *(previous.response.output if previous else []),
        ]
        return SearchRun(plan) if has_search_items(seen) else None


@dataclass
class _Search:
    item_id: str
    call_id: str
    index: int
    execution: int
    arguments: str = ""


@dataclass
class SearchRun:
    plan: Plan
    active: bool = False
    function: str = ""  # the search function's name, as the model sees it
    split: si.Split | None = None
    index: si.Index | None = None
    request: request_pb2.CreateResponseRequest | None = None
    base: list[items_pb2.Item] = field(default_factory=list)  # the first turn's input, as the client sees it
    transcript: list[items_pb2.Item] = field(
        default_factory=list
    )  # later turns' items, as the client sees them
    loaded: list[tools_pb2.Tool] = field(default_factory=list)  # loaded in this conversation, in order
    results: dict[str, str] = field(default_factory=dict)  # this response's searches: call id → text
    searches: int = 0
    other_functions: set[str] = field(default_factory=set)  # run by another of the gateway's tools
    _turn: list[_Search] = field(default_factory=list)
    _turn_items: list[items_pb2.Item] = field(default_factory=list)

    # --- 1. the request ---------------------------------------------------------------------------

    async def prepare(
        self,
        run: ResponseRun,
        deployment: ResolvedDeployment,
        provider: object,
        request: request_pb2.CreateResponseRequest,
    ) -> request_pb2.CreateResponseRequest:
        self.active = not keeps_state(provider)
        self.transcript, self.results, self.searches = [], {}, 0
        if not self.active:
            return request
        items = input_items(request)
        self.split = si.split(request.tools)
        self.index = si.Index(self.split.deferred)
        self.loaded = si.loaded_in(items)
        # A deferred tool the conversation already called was loaded then, even where the search
        # items are gone (a chat bridge conversation keeps only the calls).
        self.loaded += si.grouped(si.called(self.split.deferred, items, si.keys_of(self.loaded)))
        taken = {si.name_of(t) for t in self.split.upfront}
        self.function = next(
            n for n in ("tool_search", "gateway_tool_search", "tool_search_2") if n not in taken
        )
        self.base = items
        out = request_pb2.CreateResponseRequest()
        out.CopyFrom(request)
        self.request = out
        return self._build(out, items)

    def _build(
        self, base: request_pb2.CreateResponseRequest, items: list[items_pb2.Item]
    ) -> request_pb2.CreateResponseRequest:
        """`base` with the tools of this point of the conversation and `items` as the upstream sees them."""
        assert self.split is not None
        out = request_pb2.CreateResponseRequest()
        out.CopyFrom(base)
        kept: list[tools_pb2.Tool] = []
        for tool in out.tools:
            kind = tool.WhichOneof("kind")
            if kind == "tool_search" or si.deferred(tool) or tool in self.loaded:
                continue  # the search is a function; deferred tools wait for it; loaded ones come last
            if kind == "function" and tool.function.name == self.function:
                continue  # offered again below (or no longer)
            tool = _without_deferred(tool)
            if kind != "namespace" or tool.namespace.tools:
                kept.append(tool)
        search = [si.search_function(self.function, self.split)] if self._offer_search() else []
        del out.tools[:]
        out.tools.extend([*kept, *search, *self.loaded])
        out.ClearField("input")
        out.input.items.items.extend(si.upstream_items(items, self.function, self.results))
        return out

    def _offer_search(self) -> bool:
        assert self.split is not None
        # Nothing deferred: nothing to search, no function to offer.
        s = self.split.search
        client = s is not None and s.execution == si.CLIENT
        return s is not None and (client or bool(self.split.deferred)) and self.searches < MAX_SEARCHES

    def patch(self, request: request_pb2.CreateResponseRequest) -> request_pb2.CreateResponseRequest:
        """Another tool kind's next request (composed runs): the loaded tools and the search items
        translated, as this hook would have sent it."""
        if not self.active:
            return request
        return self._build(request, input_items(request))

    # --- 2. the events ----------------------------------------------------------------------------

    def rewrite(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        return self._rewrite(events) if self.active else events

    async def _rewrite(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        self._turn, self._turn_items = [], []
        calls: dict[str, _Search] = {}  # by the upstream's function_call item id
        assert self.split is not None
        client = self.split.search is not None and self.split.search.execution == si.CLIENT
        async for event in events:
            arm = event.WhichOneof("kind")
            if arm == _ADDED:
                body = getattr(event, arm)
                item = body.item
                if item.WhichOneof("kind") == "function_call" and item.function_call.name == self.function:
                    fc = item.function_call
                    s = _Search(
                        new_id("tsc"), fc.call_id, body.output_index, si.CLIENT if client else si.SERVER
                    )
                    calls[fc.id or fc.call_id] = s
                    yield ev.item_added(
                        si.call_item(s.item_id, s.call_id, {}, s.execution, done=False), s.index
                    )
                    continue
            elif arm in _ARGS and getattr(event, arm).item_id in calls:
                continue
            elif arm == _DONE:
                item = getattr(event, arm).item
                fc = item.function_call
                key = (fc.id or fc.call_id) if item.WhichOneof("kind") == "function_call" else ""
                if key in calls:
                    s = calls[key]
                    s.arguments = fc.arguments
                    done = si.call_item(
                        s.item_id, s.call_id, si.parse_arguments(s.arguments), s.execution, done=True
                    )
                    self._turn.append(s)
                    self._turn_items.append(done)
                    yield ev.item_done(done, s.index)
                    continue
                kept = items_pb2.Item()
                kept.CopyFrom(item)
                self._turn_items.append(kept)
            yield event

    # --- 3. after the turn ------------------------------------------------------------------------

    def searched(self) -> bool:
        return self.active and bool(self._turn)

    def run_searches(self) -> list[items_pb2.Item]:
        """This turn's server searches, run: their tool_search_output items (also kept for the next
        request); the loaded tools are offered from the next turn on."""
        assert self.index is not None
        out: list[items_pb2.Item] = []
        for s in self._turn:
            if s.execution == si.CLIENT:
                continue
            query = si.query_of(si.parse_arguments(s.arguments), s.arguments)
            found = self.index.search(query, exclude=si.keys_of(self.loaded))
            loaded = si.grouped(found)
            self.loaded.extend(loaded)
            self.searches += 1
            item = si.output_item(new_id("tso"), s.call_id, loaded)
            out.append(item)
        # The names the model will see are known once every search of the turn loaded its tools.
        names = si.flat_names(self.loaded)
        for s, item in zip([s for s in self._turn if s.execution != si.CLIENT], out, strict=True):
            self.results[s.call_id] = si.result_text(list(item.tool_search_output.tools), names)
        return out

    def stops(self) -> bool:
        """The turn asked the client for something (a client tool, a client search): the response ends."""
        for item in self._turn_items:
            kind = item.WhichOneof("kind")
            if kind == "tool_search_call" and item.tool_search_call.execution == si.CLIENT:
                return True
            if kind in _CLIENT_CALLS and not (
                kind == "function_call" and item.function_call.name in self.other_functions
            ):
                return True
        return False

    async def after_turn(self, run: ResponseRun, response: response_pb2.Response) -> Continuation | None:
        if not self.searched():
            return None
        outputs = self.run_searches()
        self.transcript.extend([*self._turn_items, *outputs])
        if self.stops():
            return Continuation(items=outputs)
        assert self.request is not None
        return Continuation(items=outputs, request=self._build(self.request, [*self.base, *self.transcript]))


def _without_deferred(tool: tools_pb2.Tool) -> tools_pb2.Tool:
    if tool.WhichOneof("kind") != "namespace" or not any(si.deferred(t) for t in tool.namespace.tools):
        return tool
    copy = tools_pb2.Tool()
    copy.CopyFrom(tool)
    del copy.namespace.tools[:]
    copy.namespace.tools.extend(t for t in tool.namespace.tools if not si.deferred(t))
    return copy
