"""The response store's interface: responses, their input items and their event logs, the leases of
the responses still running, and the signals between replicas.

Backends (SQLite embedded by default; PostgreSQL and Redis for several replicas) implement this
protocol; the domain layer never sees SQL, and a backend's own failures reach it only as
`StoreUnavailable`. Writes a follow-up request depends on are awaited before the terminal event is
sent (read-your-writes).

Signals: every write of a background response's events or state wakes the `watch`ers of that
response, on every replica sharing the store (only background responses are followed or cancelled
through the store, so the others' writes signal nothing and cost no notification) (PostgreSQL LISTEN/NOTIFY, Redis pub/sub, in process for SQLite); a
`request_cancel` reaches the replica running the response through the same channel (`on_cancel`).
Signals only say "look again": the store's rows are the truth, so a lost one costs a re-read.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol

from responses_gateway.contract.items import item_id
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.v1 import events_pb2, items_pb2, response_pb2

Order = Literal["asc", "desc"]


class StoreUnavailable(GatewayError):
    """The store could not do an operation for a reason of its own (disk full, I/O error, a corrupted
    or locked file), not because of the request: 503 `store_unavailable` to the caller, and the health
    checks say so. `why` is the backend's short reason, with no paths or SQL (it reaches clients)."""

    def __init__(self, why: str) -> None:
        super().__init__(Reason.STORE_UNAVAILABLE, f"The response store is unavailable: {why}.")
        self.why = why


@dataclass
class StoredResponse:
    response: response_pb2.Response
    input_items: list[items_pb2.Item] = field(default_factory=list)
    # The config `model_name` and upstream that produced it: a follow-up turn on the same upstream can
    # hand `previous_response_id` to it instead of replaying the history.
    deployment: str = ""
    upstream_id: str = ""
    # While it runs: the replica running it and when its lease ends (epoch seconds); 0 once it ended.
    owner: str = ""
    lease_until: float = 0.0
    # The virtual key that made it (store/keys.py `key_id`, the sha256 of the key); "" for the master
    # key or a gateway without keys. Only that key (and the master key) may read or continue it.
    key_id: str = ""


# The statuses of a response that is still running (holds a lease).
RUNNING = (response_pb2.RESPONSE_STATUS_QUEUED, response_pb2.RESPONSE_STATUS_IN_PROGRESS)


def is_running(response: response_pb2.Response) -> bool:
    return response.status in RUNNING


class Watch(Protocol):
    async def wait(self, timeout: float) -> bool:
        """Until the watched response's events or state changed since the last wait (True), or
        `timeout` seconds passed (False). A change between two waits is not lost."""
        ...


@dataclass
class ItemPage:
    items: list[items_pb2.Item]
    has_more: bool


def page_of(
    items: list[items_pb2.Item], after: str | None, before: str | None, limit: int, order: Order
) -> ItemPage:
    """One page of a response's input items, for a store that reads them all at once. In the listing
    order, `after` comes before the page and `before` after it; an id that is not one of the items
    raises KeyError (the first item with the id is the cursor)."""
    listed = items[::-1] if order == "desc" else items
    ids = [item_id(i) for i in listed] if after is not None or before is not None else []
    start, end = 0, len(listed)
    for cursor, is_after in ((after, True), (before, False)):
        if cursor is None:
            continue
        try:
            at = (len(ids) - 1 - ids[::-1].index(cursor)) if order == "desc" else ids.index(cursor)
        except ValueError:
            raise KeyError(cursor) from None
        if is_after:
            start = max(start, at + 1)
        else:
            end = min(end, at)
    chosen = listed[start:end]
    return ItemPage(items=chosen[:limit], has_more=len(chosen) > limit)


class ResponseStore(Protocol):
    # Several gateway processes may share it (they see each other's responses and signals).
    shared: bool
    # Called with a response id when some replica asked to cancel it (set by the service).
    on_cancel: Callable[[str], None] | None

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, record: StoredResponse) -> None:
        """Insert or replace a response with its input items."""

    async def update_response(self, response: response_pb2.Response) -> None:
        """Replace the response object of a stored response (status changes, the final output)."""

    async def get(self, response_id: str) -> StoredResponse | None: ...

    async def delete(self, response_id: str) -> bool:
        """True when something was deleted; the input items and event log go with it."""

    async def list_input_items(
        self, response_id: str, *, after: str | None, before: str | None, limit: int, order: Order
    ) -> ItemPage | None:
        """None when the response is not stored. `after` / `before` are item ids (cursors) in the
        listing order; a cursor that is not an input item of the response raises KeyError."""

    async def append_events(self, response_id: str, events: list[events_pb2.ResponseStreamEvent]) -> None: ...

    async def read_events(self, response_id: str, after: int) -> list[events_pb2.ResponseStreamEvent]:
        """Events with sequence_number > after, in order."""

    async def probe(self) -> None:
        """A cheap read and a small write, for the health checks; raises StoreUnavailable if either fails."""

    # --- leases ---------------------------------------------------------------------------------

    async def renew(self, owner: str, response_ids: list[str], until: float) -> None:
        """Extend the leases `owner` holds on these running responses to `until`."""

    async def claim_expired(self, owner: str, now: float, until: float) -> list[StoredResponse]:
        """Running responses whose lease ended before `now` (their replica stopped): each is taken over
        by `owner` until `until`, atomically, so one replica alone ends it. With `now` = inf, every
        running response (a single replica's start-up)."""

    async def expire(self, created_before: float) -> int:
        """Delete the responses created before this time (with their items and events); how many."""

    # --- signals --------------------------------------------------------------------------------

    def watch(self, response_id: str) -> AbstractAsyncContextManager[Watch]:
        """Be woken by changes of this response, from any replica, while the context is open."""
        ...

    async def request_cancel(self, response_id: str) -> None:
        """Ask whichever replica runs this response to cancel it (its `on_cancel`)."""
