# Generated from _async.py by scripts/unasync.py (`make generate`); do not edit:
# edit _async.py and regenerate. `make check-generate` fails when this file is stale.
"""The blocking client, over a `grpc.Channel`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import grpc

from responses_gateway.client._common import (
    ChannelOptions,
    Order,
    build,
    call_metadata,
    channel_credentials,
    channel_options,
    list_order,
    text_delta,
)
from responses_gateway.client._errors import from_rpc_error
from responses_gateway.client._stream import StreamState
from responses_gateway.v1 import (
    events_pb2,
    items_pb2,
    models_pb2,
    models_pb2_grpc,
    request_pb2,
    response_pb2,
    responses_service_pb2_grpc,
)
from responses_gateway.v1 import responses_service_pb2 as rs

if TYPE_CHECKING:
    from responses_gateway.v1.models_pb2_grpc import ModelsServiceStub
    from responses_gateway.v1.responses_service_pb2_grpc import ResponsesServiceStub

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Event = events_pb2.ResponseStreamEvent
Metadata = Sequence[tuple[str, str]]


class ResponseStream(Iterator[Event]):
    """The events of a streamed response, in order.

    Iterate it (`for`) for every `ResponseStreamEvent`, or `text_deltas()` for just the output text;
    afterwards `final_response()` is the Response of the terminal event. `cancel()` (or leaving the
    `with` block early) stops the call and ends the iteration quietly.
    """

    def __init__(self, call: grpc.CallIterator[Event]) -> None:
        # Kept as a typed callable: grpc-stubs leave the blocking call's cancel() untyped, which
        # mypy --strict would not let _sync.py call directly.
        self._cancel_call: Callable[[], object] = call.cancel
        self._events = iter(call)
        self._state = StreamState()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Event:
        if self._state.done:
            raise StopIteration
        try:
            event = next(self._events)
        except StopIteration:
            self._state.done = True
            raise
        except grpc.RpcError as e:
            self._state.done = True
            if self._state.cancelled:
                raise StopIteration from None
            raise from_rpc_error(e) from e
        self._state.observe(event)
        return event

    def text_deltas(self) -> Iterator[str]:
        """The remaining `response.output_text.delta` texts."""
        for event in self:
            delta = text_delta(event)
            if delta is not None:
                yield delta

    def until_done(self) -> Self:
        """Consume the remaining events."""
        for _ in self:
            pass
        return self

    def final_response(self) -> response_pb2.Response:
        """The Response of the terminal event (consuming the remaining events first)."""
        self.until_done()
        return self._state.final_response()

    get_final_response = final_response

    def cancel(self) -> None:
        """Cancel the call; iteration then stops without an error."""
        if not self._state.done:
            self._state.cancelled = True
            self._cancel_call()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()


class ResponsesClient:
    """The blocking client of the Responses Gateway.

    Give a `target` ("host:port") and the client opens (and on `close()` closes) its own channel: plaintext
    unless `secure=True`, `root_certificates` / `private_key` + `certificate_chain` (mTLS) or your own
    `credentials` are given. Or give an existing `channel`, which stays yours to close. `api_key` is sent as
    `authorization: Bearer <key>` on every call, `timeout` (seconds) is the default deadline of each call.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        channel: grpc.Channel | None = None,
        api_key: str | None = None,
        secure: bool = False,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float | None = None,
        options: ChannelOptions = (),
        metadata: Metadata = (),
    ) -> None:
        if (target is None) == (channel is None):
            raise TypeError("give exactly one of target or channel")
        self._owns_channel = channel is None
        if channel is None:
            assert target is not None
            creds = channel_credentials(
                secure=secure,
                root_certificates=root_certificates,
                private_key=private_key,
                certificate_chain=certificate_chain,
                credentials=credentials,
            )
            opts = channel_options(options)
            if creds is None:
                channel = grpc.insecure_channel(target, options=opts)
            else:
                channel = grpc.secure_channel(target, creds, options=opts)
        self.channel = channel
        self.timeout = timeout
        self._metadata = call_metadata(api_key, metadata)
        self._responses: ResponsesServiceStub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        self._models: ModelsServiceStub = models_pb2_grpc.ModelsServiceStub(channel)

    # -- lifecycle -------------------------------------------------------------------------------------
    def close(self) -> None:  # grpc.Channel.close() has no grace period
        """Close the channel if this client opened it."""
        if self._owns_channel:
            self.channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------------------
    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        timeout: float | None,
        metadata: Metadata,
    ) -> Resp:
        try:
            return method(
                request,
                timeout=timeout if timeout is not None else self.timeout,
                metadata=self._metadata + tuple(metadata),
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e

    def _stream(
        self,
        method: grpc.UnaryStreamMultiCallable[Req, Event],
        request: Req,
        timeout: float | None,
        metadata: Metadata,
    ) -> ResponseStream:
        try:
            call = method(
                request,
                timeout=timeout if timeout is not None else self.timeout,
                metadata=self._metadata + tuple(metadata),
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        return ResponseStream(call)

    # -- responses -------------------------------------------------------------------------------------
    def create(
        self,
        request: request_pb2.CreateResponseRequest | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
        **fields: Any,
    ) -> response_pb2.Response:
        """Create a response: `create(model="gpt-4.1", input="Hi")` or `create(CreateResponseRequest(...))`."""
        req = build(request_pb2.CreateResponseRequest, request, fields)
        return self._call(self._responses.CreateResponse, req, timeout, metadata)

    def stream(
        self,
        request: request_pb2.CreateResponseRequest | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
        **fields: Any,
    ) -> ResponseStream:
        """Create a response and stream its events (same arguments as `create`)."""
        req = build(request_pb2.CreateResponseRequest, request, fields)
        return self._stream(self._responses.StreamResponse, req, timeout, metadata)

    def retrieve(
        self,
        response_id: str,
        *,
        include: Iterable[request_pb2.Include.ValueType] = (),
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> response_pb2.Response:
        req = rs.GetResponseRequest(response_id=response_id, include=include)
        return self._call(self._responses.GetResponse, req, timeout, metadata)

    def stream_retrieve(
        self,
        response_id: str,
        *,
        starting_after: int | None = None,
        include: Iterable[request_pb2.Include.ValueType] = (),
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> ResponseStream:
        """Replay a background response's events after sequence number `starting_after`."""
        req = rs.GetResponseRequest(
            response_id=response_id, stream=True, starting_after=starting_after, include=include
        )
        return self._stream(self._responses.StreamGetResponse, req, timeout, metadata)

    def delete(
        self, response_id: str, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> rs.DeleteResponseResponse:
        req = rs.DeleteResponseRequest(response_id=response_id)
        return self._call(self._responses.DeleteResponse, req, timeout, metadata)

    def cancel(
        self, response_id: str, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> response_pb2.Response:
        """Cancel a background response."""
        req = rs.CancelResponseRequest(response_id=response_id)
        return self._call(self._responses.CancelResponse, req, timeout, metadata)

    def input_items(
        self,
        response_id: str,
        *,
        after: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
        include: Iterable[request_pb2.Include.ValueType] = (),
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> rs.ListInputItemsResponse:
        """One page of a response's input items (`order` is "asc" / "desc" or a `ListOrder`)."""
        req = rs.ListInputItemsRequest(
            response_id=response_id, after=after, limit=limit, order=list_order(order), include=include
        )
        return self._call(self._responses.ListInputItems, req, timeout, metadata)

    def iter_input_items(
        self,
        response_id: str,
        *,
        limit: int | None = None,
        order: Order | None = None,
        include: Iterable[request_pb2.Include.ValueType] = (),
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> Iterator[items_pb2.Item]:
        """Every input item, fetching pages of `limit` items as needed."""
        include = tuple(include)
        after: str | None = None
        while True:
            page = self.input_items(
                response_id,
                after=after,
                limit=limit,
                order=order,
                include=include,
                timeout=timeout,
                metadata=metadata,
            )
            yield from page.data
            if not page.has_more or not page.data:
                return
            after = page.last_id

    def count_input_tokens(
        self,
        request: rs.CountInputTokensRequest | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
        **fields: Any,
    ) -> rs.CountInputTokensResponse:
        req = build(rs.CountInputTokensRequest, request, fields)
        return self._call(self._responses.CountInputTokens, req, timeout, metadata)

    def compact(
        self,
        request: rs.CompactResponseRequest | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
        **fields: Any,
    ) -> rs.CompactResponseResponse:
        req = build(rs.CompactResponseRequest, request, fields)
        return self._call(self._responses.CompactResponse, req, timeout, metadata)

    # -- models ----------------------------------------------------------------------------------------
    def list_models(
        self, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> models_pb2.ListModelsResponse:
        return self._call(self._models.ListModels, models_pb2.ListModelsRequest(), timeout, metadata)
