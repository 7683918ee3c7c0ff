"""Bookkeeping shared by the sync and async event streams."""

from __future__ import annotations

import grpc

from responses_gateway.client._common import terminal_response
from responses_gateway.client._errors import GatewayError, RequestCancelledError, error_class
from responses_gateway.v1 import events_pb2, response_pb2


class StreamState:
    """Remembers the terminal Response (or `error` event) of a stream as its events go by."""

    def __init__(self) -> None:
        self.done = False
        self.cancelled = False
        self.final: response_pb2.Response | None = None
        self.error: events_pb2.ResponseErrorEvent | None = None

    def observe(self, event: events_pb2.ResponseStreamEvent) -> None:
        response = terminal_response(event)
        if response is not None:
            self.final = response
        elif event.WhichOneof("kind") == "error":
            self.error = event.error

    def final_response(self) -> response_pb2.Response:
        """The terminal Response, or the error explaining why there is none (call once the stream is done)."""
        if self.final is not None:
            return self.final
        if self.error is not None:
            reason = self.error.code.upper() if self.error.HasField("code") else None
            metadata = {"param": self.error.param} if self.error.HasField("param") else {}
            if self.error.HasField("code"):
                metadata["code"] = self.error.code
            cls = error_class(grpc.StatusCode.UNKNOWN, reason)
            raise cls(self.error.message, reason=reason, metadata=metadata)
        if self.cancelled:
            raise RequestCancelledError("the stream was cancelled", code=grpc.StatusCode.CANCELLED)
        raise GatewayError("the stream ended without a terminal event")
