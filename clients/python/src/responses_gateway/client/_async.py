"""The asyncio client, over a `grpc.aio.Channel`."""

# unasync: async-only
# The single source of both clients: `make generate` (scripts/unasync.py) writes the blocking _sync.py
# from this file. The `# unasync:` markers set off what differs between the two.
# unasync: end

from __future__ import annotations

import asyncio  # unasync: async-only
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import grpc
import grpc.aio  # unasync: async-only

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
    from responses_gateway.v1.models_pb2_grpc import ModelsServiceAsyncStub
    from responses_gateway.v1.responses_service_pb2_grpc import ResponsesServiceAsyncStub

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Event = events_pb2.ResponseStreamEvent
Metadata = Sequence[tuple[str, str]]


class AsyncResponseStream(AsyncIterator[Event]):
    """The events of a streamed response, in order.

    Iterate it (`async for`) for every `ResponseStreamEvent`, or `text_deltas()` for just the output text;
    afterwards `await final_response()` is the Response of the terminal event. `cancel()` (or leaving the
    `async with` block early) stops the call and ends the iteration quietly.
    """

    def __init__(self, call: grpc.aio.UnaryStreamCall[Any, Event]) -> None:
        # Kept as a typed callable: grpc-stubs leave the blocking call's cancel() untyped, which
        # mypy --strict would not let _sync.py call directly.
        self._cancel_call: Callable[[], object] = call.cancel
        self._events = aiter(call)
        self._state = StreamState()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        if self._state.done:
            raise StopAsyncIteration
        try:
            event = await anext(self._events)
        except StopAsyncIteration:
            self._state.done = True
            raise
        except grpc.RpcError as e:
            self._state.done = True
            if self._state.cancelled:
                raise StopAsyncIteration from None
            raise from_rpc_error(e) from e
        # unasync: async-only
        except asyncio.CancelledError:
            # read() raises CancelledError once the call was cancelled locally; only that case is ours.
            # (A cancelled blocking call raises an RpcError instead, handled above.)
            if not self._state.cancelled:
                raise
            self._state.done = True
            raise StopAsyncIteration from None
        # unasync: end
        self._state.observe(event)
        return event

    async def text_deltas(self) -> AsyncIterator[str]:
        """The remaining `response.output_text.delta` texts."""
        async for event in self:
            delta = text_delta(event)
            if delta is not None:
                yield delta

    async def until_done(self) -> Self:
        """Consume the remaining events."""
        async for _ in self:
            pass
        return self

    async def final_response(self) -> response_pb2.Response:
        """The Response of the terminal event (consuming the remaining events first)."""
        await self.until_done()
        return self._state.final_response()

    get_final_response = final_response

    def cancel(self) -> None:
        """Cancel the call; iteration then stops without an error."""
        if not self._state.done:
            self._state.cancelled = True
            self._cancel_call()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()


class AsyncResponsesClient:
    """The asyncio client of the Responses Gateway.

    Give a `target` ("host:port") and the client opens (and on `close()` closes) its own channel: plaintext
    unless `secure=True`, `root_certificates` / `private_key` + `certificate_chain` (mTLS) or your own
    `credentials` are given. Or give an existing `channel`, which stays yours to close. `api_key` is sent as
    `authorization: Bearer <key>` on every call, `timeout` (seconds) is the default deadline of each call.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        channel: grpc.aio.Channel | None = None,
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
                channel = grpc.aio.insecure_channel(target, options=opts)
            else:
                channel = grpc.aio.secure_channel(target, creds, options=opts)
        self.channel = channel
        self.timeout = timeout
        self._metadata = call_metadata(api_key, metadata)
        self._responses: ResponsesServiceAsyncStub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        self._models: ModelsServiceAsyncStub = models_pb2_grpc.ModelsServiceStub(channel)

    # -- lifecycle -------------------------------------------------------------------------------------
    # unasync: async-only
    async def close(self, grace: float | None = None) -> None:
        """Close the channel if this client opened it."""
        if self._owns_channel:
            await self.channel.close(grace)

    # unasync: sync-only
    # def close(self) -> None:  # grpc.Channel.close() has no grace period
    #     """Close the channel if this client opened it."""
    #     if self._owns_channel:
    #         self.channel.close()
    # unasync: end

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- plumbing --------------------------------------------------------------------------------------
    async def _call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        timeout: float | None,
        metadata: Metadata,
    ) -> Resp:
        try:
            return await method(
                request,
                timeout=timeout if timeout is not None else self.timeout,
                metadata=self._metadata + tuple(metadata),
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e

    def _stream(
        self,
        method: grpc.aio.UnaryStreamMultiCallable[Req, Event],
        request: Req,
        timeout: float | None,
        metadata: Metadata,
    ) -> AsyncResponseStream:
        try:
            call = method(
                request,
                timeout=timeout if timeout is not None else self.timeout,
                metadata=self._metadata + tuple(metadata),
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        return AsyncResponseStream(call)

    # -- responses -------------------------------------------------------------------------------------
    async def create(
        self,
        request: request_pb2.CreateResponseRequest | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
        **fields: Any,
    ) -> response_pb2.Response:
        """Create a response: `create(model="gpt-4.1", input="Hi")` or `create(CreateResponseRequest(...))`."""
        req = build(request_pb2.CreateResponseRequest, request, fields)
        return await self._call(self._responses.CreateResponse, req, timeout, metadata)

    def stream(
        self,
        request: request_pb2.CreateResponseRequest | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
        **fields: Any,
    ) -> AsyncResponseStream:
        """Create a response and stream its events (same arguments as `create`); not a coroutine."""
        req = build(request_pb2.CreateResponseRequest, request, fields)
        return self._stream(self._responses.StreamResponse, req, timeout, metadata)

    async def retrieve(
        self,
        response_id: str,
        *,
        include: Iterable[request_pb2.Include.ValueType] = (),
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> response_pb2.Response:
        req = rs.GetResponseRequest(response_id=response_id, include=include)
        return await self._call(self._responses.GetResponse, req, timeout, metadata)

    def stream_retrieve(
        self,
        response_id: str,
        *,
        starting_after: int | None = None,
        include: Iterable[request_pb2.Include.ValueType] = (),
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> AsyncResponseStream:
        """Replay a background response's events after sequence number `starting_after`; not a coroutine."""
        req = rs.GetResponseRequest(
            response_id=response_id, stream=True, starting_after=starting_after, include=include
        )
        return self._stream(self._responses.StreamGetResponse, req, timeout, metadata)

    async def delete(
        self, response_id: str, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> rs.DeleteResponseResponse:
        req = rs.DeleteResponseRequest(response_id=response_id)
        return await self._call(self._responses.DeleteResponse, req, timeout, metadata)

    async def cancel(
        self, response_id: str, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> response_pb2.Response:
        """Cancel a background response."""
        req = rs.CancelResponseRequest(response_id=response_id)
        return await self._call(self._responses.CancelResponse, req, timeout, metadata)

    async def input_items(
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
        return await self._call(self._responses.ListInputItems, req, timeout, metadata)

    async def iter_input_items(
        self,
        response_id: str,
        *,
        limit: int | None = None,
        order: Order | None = None,
        include: Iterable[request_pb2.Include.ValueType] = (),
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> AsyncIterator[items_pb2.Item]:
        """Every input item, fetching pages of `limit` items as needed."""
        include = tuple(include)
        after: str | None = None
        while True:
            page = await self.input_items(
                response_id,
                after=after,
                limit=limit,
                order=order,
                include=include,
                timeout=timeout,
                metadata=metadata,
            )
            # unasync: async-only
            for item in page.data:  # no `yield from` in an async generator
                yield item
            # unasync: sync-only
            # yield from page.data
            # unasync: end
            if not page.has_more or not page.data:
                return
            after = page.last_id

    async def count_input_tokens(
        self,
        request: rs.CountInputTokensRequest | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
        **fields: Any,
    ) -> rs.CountInputTokensResponse:
        req = build(rs.CountInputTokensRequest, request, fields)
        return await self._call(self._responses.CountInputTokens, req, timeout, metadata)

    async def compact(
        self,
        request: rs.CompactResponseRequest | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
        **fields: Any,
    ) -> rs.CompactResponseResponse:
        req = build(rs.CompactResponseRequest, request, fields)
        return await self._call(self._responses.CompactResponse, req, timeout, metadata)

    # -- models ----------------------------------------------------------------------------------------
    async def list_models(
        self, *, timeout: float | None = None, metadata: Metadata = ()
    ) -> models_pb2.ListModelsResponse:
        return await self._call(self._models.ListModels, models_pb2.ListModelsRequest(), timeout, metadata)
