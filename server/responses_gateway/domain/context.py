"""What a transport tells the domain about one call, and what the domain tells it back."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from responses_gateway.auth import MASTER, Principal
from responses_gateway.contract.ids import new_id
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.telemetry.record import CallRecord, header_value

# Response header / gRPC trailer naming the request parameters a deployment with drop_params dropped.
DROPPED_HEADER = "x-gateway-dropped-params"
REQUEST_ID_HEADER = "x-request-id"


@dataclass(frozen=True)
class CallContext:
    """`deadline` is on the time.monotonic() clock. `notes` are filled by the domain for the transport
    to pass on (HTTP headers / gRPC trailers); `record` is the call's telemetry (request id, who
    served, cost), which the transport reads for the routing headers."""

    deadline: float | None = None
    notes: dict[str, str] = field(default_factory=dict)
    record: CallRecord = field(default_factory=lambda: CallRecord(new_id("req")))
    # Who is calling: the responses it stores carry `principal.key_id` (store/base.py StoredResponse).
    principal: Principal = MASTER

    def headers(self) -> dict[str, str]:
        """Everything to tell the client once the response is known: notes, routing, request id. Values
        may echo a client's model name (a wildcard deployment): `header_value` makes each one safe."""
        out = {**self.notes, **self.record.served_headers(), REQUEST_ID_HEADER: self.record.request_id}
        return {k: header_value(v) for k, v in out.items()}

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise GatewayError(Reason.DEADLINE_EXCEEDED, "The request's deadline passed.")
        return left

    def add_dropped(self, names: Iterable[str]) -> None:
        """Dropped parameters join the list, never replace it (the Chat Completions surface drops
        chat-only knobs before the adapter drops its own)."""
        known = [n for n in self.notes.get(DROPPED_HEADER, "").split(",") if n]
        new = [n for n in names if n not in known]
        if new:
            self.notes[DROPPED_HEADER] = ",".join(known + new)
