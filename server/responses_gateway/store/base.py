"""The response store's interface: responses, their input items and their event logs.

Backends (SQLite embedded by default; shared backends for several replicas) implement this small
protocol; the domain layer never sees SQL, and a backend's own failures reach it only as
`StoreUnavailable`. Writes a follow-up request depends on are awaited before
the terminal event is sent (read-your-writes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

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


@dataclass
class ItemPage:
    items: list[items_pb2.Item]
    has_more: bool


class ResponseStore(Protocol):
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
        self, response_id: str, *, after: str | None, limit: int, order: Order
    ) -> ItemPage | None:
        """None when the response is not stored."""

    async def append_events(self, response_id: str, events: list[events_pb2.ResponseStreamEvent]) -> None: ...

    async def read_events(self, response_id: str, after: int) -> list[events_pb2.ResponseStreamEvent]:
        """Events with sequence_number > after, in order."""

    async def probe(self) -> None:
        """A cheap read and a small write, for the health checks; raises StoreUnavailable if either fails."""
