"""The gateway's own tools together: one hook for a run, whatever kinds of gateway-run tools its
request has (MCP, tool search).

A run with one kind gets that kind's hook as it is (or none at all). With both, `ComposedRun` chains
them: the search prepares the request first, so the MCP loop sees (and keeps, as its first request)
the search function and the tools offered without the deferred ones; events pass the search first,
which turns its calls into `tool_search_call` items, then the MCP loop. The MCP loop owns the
conversation between turns (the calls it ran and their results), and the search adds to each of its
next requests what it knows: the tools loaded so far, and its calls and results as function pairs.
A turn that only searched continues from the MCP loop's conversation too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.contract import events as ev
from responses_gateway.domain.plan import Plan
from responses_gateway.domain.run import Continuation, TurnHook
from responses_gateway.domain.tools.mcp_loop import McpRun, McpTools
from responses_gateway.domain.tools.search_loop import SearchRun, ToolSearchTools
from responses_gateway.v1 import request_pb2, response_pb2

if TYPE_CHECKING:
    from responses_gateway.domain.run import ResponseRun


class GatewayTools:
    """The service's `HookFactory`: the hook of each run that has gateway-run tools."""

    def __init__(self, mcp: McpTools, search: ToolSearchTools | None = None) -> None:
        self.mcp = mcp
        self.search = search or ToolSearchTools()

    def for_run(self, plan: Plan) -> TurnHook | None:
        mcp, search = self.mcp.for_run(plan), self.search.for_run(plan)
        if mcp is not None and search is not None:
            return ComposedRun(search, mcp)
        return mcp or search


@dataclass
class ComposedRun:
    search: SearchRun
    mcp: McpRun

    async def prepare(
        self,
        run: ResponseRun,
        deployment: ResolvedDeployment,
        provider: object,
        request: request_pb2.CreateResponseRequest,
    ) -> request_pb2.CreateResponseRequest:
        request = await self.search.prepare(run, deployment, provider, request)
        request = await self.mcp.prepare(run, deployment, provider, request)
        # The MCP loop's functions are the gateway's, not the client's: calling one does not end
        # the response for the client to act.
        self.search.other_functions = set(self.mcp.offers)
        return request

    def rewrite(self, events: AsyncIterator[ev.Event]) -> AsyncIterator[ev.Event]:
        return self.mcp.rewrite(self.search.rewrite(events))

    async def after_turn(self, run: ResponseRun, response: response_pb2.Response) -> Continuation | None:
        if not self.mcp.active:
            # MCP items of earlier turns only (made text in `prepare`): the search runs alone.
            return await self.search.after_turn(run, response)
        searched = self.search.searched()
        outputs = self.search.run_searches() if searched else []
        more = await self.mcp.after_turn(run, response)
        if not searched:
            if more is not None and more.request is not None:
                more.request = self.search.patch(more.request)
            return more
        events = more.events if more is not None else []
        if (more is not None and more.request is None) or self.search.stops():
            # The MCP loop ended the response (approval, a client call, a limit), or the client has
            # a tool call or a search of its own to answer.
            return Continuation(items=outputs, events=events)
        nxt = more.request if more is not None and more.request is not None else self.mcp.next_request()
        return Continuation(items=outputs, events=events, request=self.search.patch(nxt))
