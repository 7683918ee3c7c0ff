"""The adapter interface, after the Vercel AI SDK's: a request in, a stream of typed events out.

`open(call)` translates the request at once (a request the provider cannot take fails there, before
anything is sent) and returns the upstream stream: the events as they arrive, and the parameters the
adapter dropped. Adapters know nothing of numbering or storage: the response run numbers the events,
fixes their indices and folds them into the final Response. Optional capabilities (a native unary call,
native retrieve / delete / cancel, token counting, compaction) are separate small protocols, detected
one way only (`isinstance`), so an adapter implements only what its upstream can do.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.v1 import (
    events_pb2,
    request_pb2,
    response_pb2,
    responses_service_pb2,
)


@dataclass
class ProviderCall:
    """One upstream call: the request as the upstream should see it (`model` is the upstream's id)."""

    request: request_pb2.CreateResponseRequest
    deployment: ResolvedDeployment
    # Seconds left before the caller's deadline, if it set one.
    timeout: float | None = None


class UpstreamStream:
    """One upstream call's events as they arrive, and what the adapter dropped from the request
    (`drop_params`). Iterating it iterates the adapter's generator itself: no extra hop per event."""

    def __init__(
        self,
        events: AsyncGenerator[events_pb2.ResponseStreamEvent, None],
        dropped: Sequence[str] = (),
    ) -> None:
        self._events = events
        self.dropped = tuple(dropped)

    def __aiter__(self) -> AsyncGenerator[events_pb2.ResponseStreamEvent, None]:
        return self._events

    async def aclose(self) -> None:
        """Stop reading: closes the upstream request if it has not finished."""
        await self._events.aclose()


class Provider(Protocol):
    """One instance per deployment: it owns that deployment's pooled HTTP client."""

    def open(self, call: ProviderCall) -> UpstreamStream:
        """Translate the request (raising GatewayError when the provider cannot take it) and return its
        stream. Errors raised before the first event are GatewayErrors with the upstream's status
        (retryable by the router); later ones end the stream."""
        ...

    async def aclose(self) -> None: ...


# (protocol, provider class) → answer; kept outside the protocol classes, whose own attributes typing
# would count as members to check.
_ANSWERS: dict[tuple[type, type], bool] = {}


class Capability(type(Protocol)):  # type: ignore[misc]
    """`isinstance(obj, SomeProtocol)` answered once per class of `obj` (provider capabilities, run hooks).

    typing's runtime check looks up each of the protocol's members on every call (3 to 8 µs, several
    times per request). A capability is a method of the provider's class (no provider sets one per
    instance), so the answer is kept per class.
    """

    def __instancecheck__(cls, obj: object) -> bool:
        key = (cls, type(obj))
        hit = _ANSWERS.get(key)
        if hit is None:
            hit = _ANSWERS[key] = bool(super().__instancecheck__(obj))
        return hit


@runtime_checkable
class SupportsCreate(Protocol, metaclass=Capability):
    """A native unary call, cheaper than folding a stream (one JSON body instead of N events)."""

    async def create(self, call: ProviderCall) -> response_pb2.Response: ...


@runtime_checkable
class SupportsNativeState(Protocol, metaclass=Capability):
    """The upstream keeps responses itself: `previous_response_id`, retrieve, delete, cancel and
    input items can be handed to it."""

    async def retrieve(self, response_id: str) -> response_pb2.Response: ...

    async def delete(self, response_id: str) -> responses_service_pb2.DeleteResponseResponse: ...

    async def cancel(self, response_id: str) -> response_pb2.Response: ...

    async def list_input_items(
        self, request: responses_service_pb2.ListInputItemsRequest
    ) -> responses_service_pb2.ListInputItemsResponse: ...


@runtime_checkable
class SupportsTokenCount(Protocol, metaclass=Capability):
    async def count_input_tokens(
        self, request: responses_service_pb2.CountInputTokensRequest
    ) -> responses_service_pb2.CountInputTokensResponse: ...


@runtime_checkable
class SupportsCompact(Protocol, metaclass=Capability):
    async def compact(
        self, request: responses_service_pb2.CompactResponseRequest
    ) -> responses_service_pb2.CompactResponseResponse: ...
