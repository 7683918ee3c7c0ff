"""The response store's interface: responses, their input items and their event logs.

Backends (SQLite embedded by default; shared backends for several replicas) implement this small
protocol; the domain layer never sees SQL. Writes a follow-up request depends on are awaited before
the terminal event is sent (read-your-writes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from responses_gateway.v1 import events_pb2, items_pb2, response_pb2

Order = Literal["asc", "desc"]


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
