"""WebSocket mode of `/v1/responses` (Open Responses' `x-openresponses-websocket`, OpenAI's WebSocket mode).

A client opens a WebSocket on the path it would POST to, authenticated as a REST call is (the
`Authorization` header of the upgrade request), and drives it with `response.create` messages: the
create body plus `"type": "response.create"`, without the HTTP-only `stream`, `stream_options` and
`background`. Each turn's events are the ones SSE carries, one JSON text message per event; whatever
fails is a `WebSocketErrorEvent` (`{"type": "error", "status": ..., "error": {...}}`), after which the
connection stays usable.

The connection runs one response at a time: a `response.create` while one runs is refused (the turn
in flight goes on), so turns are sequential. It keeps its last turn when that turn was `store: false`,
so the next one can continue it with `previous_response_id` although the store never saw it; a failed
turn drops what it kept (the chain is broken there: the client starts over with its whole context).
A stored turn is continued from the store, on this connection or any later one.

Only translation lives here: the turn is the domain's `ResponsesService.stream`, errors go through
`errors.py`'s table, events through the codec.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from responses_gateway import codec
from responses_gateway.auth import MASTER, Authenticator, Principal
from responses_gateway.contract.events import is_terminal, response_of
from responses_gateway.domain.context import CallContext
from responses_gateway.domain.plan import kept_turn
from responses_gateway.domain.service import ResponsesService
from responses_gateway.errors import GatewayError, Reason, as_gateway_error, echo
from responses_gateway.platform.gate import Gate
from responses_gateway.store.base import StoredResponse
from responses_gateway.telemetry import metrics
from responses_gateway.transport.rest.errors import error_response
from responses_gateway.v1 import request_pb2, response_pb2

log = logging.getLogger(__name__)

ROUTE = "/v1/responses (websocket)"  # the metrics label of this endpoint's errors
CREATE = "response.create"
# Fields of the HTTP create body that Open Responses says MUST NOT be sent over WebSocket: every
# response streams on the connection, and the connection is the response's lifetime.
HTTP_ONLY = ("stream", "stream_options", "background")


def read_message(data: str | bytes, limit: int) -> dict[str, Any]:
    """A client message as the body of the `response.create` it must be; anything else raises (it is
    no create at all, so nothing about the connection's turns changes)."""
    if len(data) > limit:
        raise GatewayError(
            Reason.REQUEST_TOO_LARGE, f"The message is larger than the limit of {limit} bytes."
        )
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise GatewayError(
            Reason.INVALID_JSON, f"We could not parse the JSON of your message. ({e})"
        ) from None
    if not isinstance(body, dict):
        raise GatewayError(Reason.INVALID_JSON, "A message must be a JSON object.")
    kind = body.pop("type", None)
    if kind != CREATE:
        shown = "no `type`" if kind is None else f"type '{echo(kind)}'"
        raise GatewayError(
            Reason.INVALID_REQUEST,
            f"Unsupported message ({shown}): this connection accepts only '{CREATE}' messages.",
            param="type",
        )
    return body


def create_request(body: dict[str, Any]) -> request_pb2.CreateResponseRequest:
    """The create request of a `response.create` body; a body that is not a valid one raises."""
    for name in HTTP_ONLY:
        if name in body:
            raise GatewayError(
                Reason.INVALID_REQUEST,
                f"'{name}' is not sent over WebSocket: every response streams its events on the connection.",
                param=name,
            )
    create = codec.from_json(request_pb2.CreateResponseRequest(), body)
    create.stream = True  # what the same turn over HTTP says
    return create


def error_message(error: GatewayError) -> str:
    return orjson.dumps(error.websocket_event()).decode()


class WebSocketShim:
    def __init__(
        self,
        service: ResponsesService,
        authenticator: Authenticator,
        max_message_bytes: int,
        gate: Gate | None = None,
    ) -> None:
        self.service = service
        self.auth = authenticator
        self.max_message = max_message_bytes
        self.gate = gate

    async def endpoint(self, websocket: WebSocket) -> None:
        try:
            principal = await self.auth.authenticate(websocket.headers.get("authorization"))
        except GatewayError as e:
            # Refused before the upgrade: the HTTP status and error JSON a REST call gets.
            metrics.observe_error(ROUTE, e)
            await websocket.send_denial_response(error_response(e))
            return
        await websocket.accept()
        await Connection(websocket, self.service, self.max_message, principal, self.gate).serve()


class Connection:
    """One client's connection: its messages in order, the turn in flight, the turn it keeps."""

    def __init__(
        self,
        websocket: WebSocket,
        service: ResponsesService,
        max_message_bytes: int,
        principal: Principal = MASTER,
        gate: Gate | None = None,
    ) -> None:
        self.ws = websocket
        self.service = service
        self.max_message = max_message_bytes
        self.principal = principal  # every turn of the connection is this key's (limits, isolation)
        self.gate = gate
        self.kept: StoredResponse | None = None  # the last turn, when it was store: false and succeeded
        self.turn: asyncio.Task[None] | None = None
        self.turn_over = False  # the turn in flight sent its terminal event
        # Events of the turn and errors about other messages go out from two tasks; each message goes
        # out whole, in the order it was produced.
        self._send_lock = asyncio.Lock()

    async def serve(self) -> None:
        """Read messages until the client leaves; then end the turn in flight (the client is gone)."""
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                await self.on_message(text if text is not None else message.get("bytes") or b"")
        finally:
            if self.turn is not None and not self.turn.done():
                self.turn.cancel()
                await asyncio.gather(self.turn, return_exceptions=True)

    async def on_message(self, data: str | bytes) -> None:
        try:
            body = read_message(data, self.max_message)
        except GatewayError as e:
            await self.send_error(e)
            return
        if self.turn is not None and not self.turn.done() and self.turn_over:
            # Its terminal event went out (the client may answer it at once); what follows is the
            # upstream's last bytes being read, which the next turn need not race.
            await asyncio.gather(self.turn, return_exceptions=True)
        if self.turn is not None and not self.turn.done():
            # Refused whole: the turn in flight goes on, and what it will keep is its own business.
            await self.send_error(
                GatewayError(
                    Reason.RESPONSE_IN_FLIGHT,
                    "A response is already in progress on this connection; send the next "
                    f"'{CREATE}' after its terminal event.",
                )
            )
            return
        try:
            create = create_request(body)
        except Exception as e:
            self.kept = None  # a create that failed: the chain it would have continued is broken
            await self.send_error(as_gateway_error(e))
            return
        self.turn_over = False
        self.turn = asyncio.create_task(self.run_turn(create))

    async def run_turn(self, create: request_pb2.CreateResponseRequest) -> None:
        """One response: its events as they come; the turn kept (or dropped) by how it ended."""
        kept = self.kept
        continued = kept if kept is not None and kept.response.id == create.previous_response_id else None
        # Whatever happens, the connection forgets the turn it kept until this one succeeds.
        self.kept = None
        final: response_pb2.Response | None = None
        try:
            ctx = CallContext(principal=self.principal)
            if self.gate is not None:
                kept_id = continued.response.id if continued is not None else None
                await self.gate.admit_create(self.principal, create, ctx.record, kept_id)
            events = await self.service.stream(create, ctx, previous=continued)
            try:
                async for event in events:
                    if is_terminal(event):
                        final = response_of(event)
                        # Settled before the client hears of it: its next create may follow at once.
                        self._settle(create, final, continued)
                    await self.send(codec.dumps(event).decode())
            finally:
                await events.aclose()
        except WebSocketDisconnect:
            return  # the client left mid-turn; the reader sees it too and ends the connection
        except Exception as e:
            error = as_gateway_error(e)
            if error is not e and error.reason == Reason.INTERNAL:
                log.exception("websocket turn failed")
            with contextlib.suppress(WebSocketDisconnect):  # the client may be gone already
                await self.send_error(error)
            return

    def _settle(
        self,
        create: request_pb2.CreateResponseRequest,
        final: response_pb2.Response | None,
        continued: StoredResponse | None,
    ) -> None:
        if final is not None and final.status != response_pb2.RESPONSE_STATUS_FAILED and not _stored(create):
            self.kept = kept_turn(create, final, continued)
        self.turn_over = True

    async def send(self, text: str) -> None:
        async with self._send_lock:
            await self.ws.send_text(text)

    async def send_error(self, error: GatewayError) -> None:
        metrics.observe_error(ROUTE, error)  # every error this endpoint answers, as REST counts its own
        await self.send(error_message(error))


def _stored(create: request_pb2.CreateResponseRequest) -> bool:
    """The turn is in the store (the default), so it is continued from there, not kept here."""
    return create.store if create.HasField("store") else True
