"""What a create request becomes before any upstream sees it: its input items (with ids), the stored
turn it continues, and, per deployment, the request that deployment receives."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.contract.ids import check_response_id
from responses_gateway.contract.items import input_items, with_ids
from responses_gateway.domain.compaction import Sealer, open_input
from responses_gateway.domain.context import CallContext
from responses_gateway.domain.history import history
from responses_gateway.errors import GatewayError, Reason, echo
from responses_gateway.providers.base import SupportsNativeState
from responses_gateway.store.base import ResponseStore, StoredResponse
from responses_gateway.v1 import items_pb2, request_pb2, response_pb2


def upstream_key(deployment: ResolvedDeployment) -> str:
    """Two deployments with the same key share the upstream's stored state."""
    return f"{deployment.adapter}:{deployment.api_base}"


def keeps_state(provider: object) -> bool:
    """The upstream keeps its own responses (OpenAI's Responses API): it can answer
    previous_response_id, and the gateway relays its ids and indices as they are."""
    return isinstance(provider, SupportsNativeState)


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
    # Opens the gateway's compaction items for the upstream (stored as the client sent them).
    sealer: Sealer | None = None
    # Stored only while it runs and a while after (a background response with `store: false`).
    forget: bool = False


async def make_plan(
    request: request_pb2.CreateResponseRequest,
    ctx: CallContext,
    store: ResponseStore,
    *,
    mode: str,
    log_all_events: bool,
    flush_seconds: float = 0.05,
    previous: StoredResponse | None = None,
    sealer: Sealer | None = None,
) -> Plan:
    """`previous`: a turn the caller holds itself (a WebSocket connection's last `store: false`
    response, see `kept_turn`), taken instead of the store when `previous_response_id` names it."""
    if not request.model:
        raise GatewayError(Reason.INVALID_REQUEST, "Missing required parameter: 'model'.", param="model")
    items = with_ids(input_items(request))
    if request.previous_response_id:
        check_response_id(request.previous_response_id, "previous_response_id")
        if previous is None or previous.response.id != request.previous_response_id:
            previous = await store.get(request.previous_response_id)
    else:
        previous = None
    keep = request.store if request.HasField("store") else True
    # A background response is stored while it runs even with `store: false` (it is polled, and may
    # be read from another replica), and deleted a while after it ended (`Plan.forget`), as OpenAI
    # keeps such responses for about ten minutes.
    return Plan(
        request,
        ctx,
        items,
        previous,
        keep or request.background,
        log_events=request.background or log_all_events,
        flush_seconds=flush_seconds,
        mode=mode,
        sealer=sealer,
        forget=request.background and not keep,
    )


async def upstream_request(
    plan: Plan, store: ResponseStore, deployment: ResolvedDeployment, provider: object
) -> request_pb2.CreateResponseRequest:
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
            Reason.PREVIOUS_RESPONSE_NOT_FOUND,
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
    if plan.sealer is not None:
        request = open_input(request, plan.sealer)
    return request


def kept_turn(
    request: request_pb2.CreateResponseRequest,
    response: response_pb2.Response,
    continued: StoredResponse | None,
) -> StoredResponse:
    """A finished turn as a WebSocket connection keeps it in memory, so that the next turn can continue
    it with `previous_response_id` although the store never saw it (`store: false`).

    `continued` is the kept turn this one continued, if it did: the connection keeps only its last
    turn, so that turn's items are folded into this one's input, and `history()` reads the whole
    conversation from the kept turn alone (then from the store, where the chain started in it). No
    upstream holds the turn (`upstream_id` is empty), so a continuation always replays it."""
    kept = response_pb2.Response()
    kept.CopyFrom(response)
    items: list[items_pb2.Item] = []
    before = request.previous_response_id or None
    if continued is not None:
        items.extend(continued.input_items)
        items.extend(continued.response.output)
        earlier = continued.response
        before = earlier.previous_response_id if earlier.HasField("previous_response_id") else None
    if before is None:
        kept.ClearField("previous_response_id")
    else:
        kept.previous_response_id = before
    items.extend(with_ids(input_items(request)))
    return StoredResponse(kept, items)
