"""The `error` stream event the REST shim writes when a stream breaks in a way the domain could not end
with `response.failed` (e.g. the store lost while a reader follows a response): it validates against
both specs' error event schemas and is numbered after the last event sent."""

from __future__ import annotations

import asyncio
import json

import pytest

from responses_gateway.contract import events as ev
from responses_gateway.domain.context import CallContext
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.store.base import StoreUnavailable
from responses_gateway.transport.rest.app import sse_response
from responses_gateway.transport.rest.sse import error_frame
from tests.support.spec import BothSpecs


def parse(frame: bytes) -> dict[str, object]:
    data = [line for line in frame.decode().splitlines() if line.startswith("data: ")]
    return json.loads(data[0][6:])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "error",
    [
        StoreUnavailable("connection lost"),
        GatewayError(Reason.INTERNAL, "Something broke."),
        GatewayError(Reason.INVALID_REQUEST, "Bad value.", param="input"),
    ],
)
def test_error_event_validates_against_both_specs(error: GatewayError) -> None:
    body = parse(error_frame(error, 7))
    BothSpecs().check_event(body)
    assert body["sequence_number"] == 7
    assert body["message"] == error.message and body["error"]["message"] == error.message  # type: ignore[index]


def test_error_event_follows_the_last_sequence_number() -> None:
    async def events():  # type: ignore[no-untyped-def]
        for seq in range(3):
            event = ev.text_delta("msg_1", "x")
            event.sequence_number = seq
            yield event
        raise StoreUnavailable("connection lost")

    async def body() -> list[bytes]:
        response = sse_response(events(), CallContext())
        return [chunk async for chunk in response.body_iterator]  # type: ignore[misc]

    chunks = asyncio.run(body())
    last = parse(chunks[-1])
    assert last["type"] == "error" and last["sequence_number"] == 3
    assert last["code"] == "store_unavailable"
