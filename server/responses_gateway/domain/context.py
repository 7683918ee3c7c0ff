"""What a transport tells the domain about one call, and what the domain tells it back."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

from responses_gateway.contract.ids import new_id
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.telemetry.record import CallRecord

_VISIBLE = re.compile(r"[\x20-\x7e]*")
_SAFE = " !\"#$&'()*+,/:;<=>?@[\\]^_`{|}~"
_LONGEST = 512


def _header_value(value: str) -> str:
    if not _VISIBLE.fullmatch(value):
        value = quote(value, safe=_SAFE)
    return value if len(value) <= _LONGEST else value[: _LONGEST - 3] + "..."


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

    def headers(self) -> dict[str, str]:
        """Everything to tell the client once the response is known: notes, routing, request id. Values
        may echo a client's model name (a wildcard deployment): anything but visible ASCII is
        percent-encoded, as neither HTTP headers nor gRPC metadata may carry it, and a value is cut at
        `_LONGEST` characters (a client's name may be as long as a request allows)."""
        out = {**self.notes, **self.record.served_headers(), REQUEST_ID_HEADER: self.record.request_id}
        return {k: _header_value(v) for k, v in out.items()}

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
