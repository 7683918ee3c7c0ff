"""The HTTP server under the REST shim: uvicorn with httptools, plus the bounds uvicorn does not have.

uvicorn holds a connection whose request head never completes, or whose body stops arriving, for as
long as the client likes, and its ``limit_concurrency`` is checked only once a request head has arrived
(counting connections and running requests alike), so a slow client can hold any number of sockets.
`GuardedHttpToolsProtocol` adds, per connection:

* a head timeout: the request line and headers must arrive within ``header_timeout_seconds`` of the
  connection opening (or of the first byte of the next request on a kept-alive connection);
* a body timeout: the whole body must arrive within ``body_timeout_seconds`` of the head;
* a connection limit: past ``max_connections`` open connections, a new one is answered 503 and closed.

It also writes what a response cycle sends within one step of the loop in one write (`_Coalescing`):
uvicorn writes a response's head, its body and each SSE event separately, and each write to a socket
costs ~15 µs of kernel time and sends the client a segment of its own.

Only receiving a request is timed: once its body is in, nothing here touches the connection, so a
response may stream for as long as it needs. A WebSocket upgrade (`/v1/responses` in WebSocket mode)
is timed like any request head; once upgraded, the connection belongs to uvicorn's WebSocket protocol
(still counted against the connection limit, and pinged to find dead peers).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from responses_gateway.config.models import HttpSettings
from responses_gateway.telemetry import metrics

# How long a connection refused for the limit is still read from (and the bytes dropped) after its
# 503, so that closing it does not reset the connection and destroy the 503 before the client reads it.
_REJECT_LINGER_SECONDS = 1.0
# How much a response's writes may hold before they leave without waiting for the loop's next turn.
_HELD_BYTES = 8 * 1024


def _raw_error(status: bytes, error_type: str, code: str, message: str, extra: bytes = b"") -> bytes:
    """A complete OpenAI-shaped error response, written to the transport directly (no app involved)."""
    body = orjson.dumps({"error": {"message": message, "type": error_type, "param": None, "code": code}})
    return b"".join(
        [
            b"HTTP/1.1 ",
            status,
            b"\r\ncontent-type: application/json\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\nconnection: close\r\n",
            extra,
            b"\r\n",
            body,
        ]
    )


_HEAD_TIMEOUT = _raw_error(
    b"408 Request Timeout",
    "invalid_request_error",
    "request_timeout",
    "The request head was not received in time.",
)
_BODY_TIMEOUT = _raw_error(
    b"408 Request Timeout",
    "invalid_request_error",
    "request_timeout",
    "The request body was not received in time.",
)


class _Coalescing:
    """The transport a response cycle writes to: what the cycle writes within one step of the loop
    leaves in one write, at the loop's next turn, instead of one write per piece.

    The exception is the first body write, which goes out at once with the head held before it: a
    unary response is head and body in one write with no turn in between, and a stream's first event
    is not held. A head with nothing behind it (a stream whose first event is not ready, a 100 Continue)
    goes out at the next turn. A cycle's writes are flushed as its response completes, before the
    protocol starts the connection's next request, so nothing of one response can follow the next's."""

    __slots__ = ("_held", "_on_response", "_size", "_transport", "_writes")

    def __init__(self, transport: asyncio.Transport, on_response: Callable[[], None]) -> None:
        self._transport = transport
        self._on_response = on_response
        self._held: list[bytes] | None = None
        self._size = 0
        self._writes = 0

    def write(self, data: bytes) -> None:
        self._writes += 1
        held = self._held
        if held is None:
            self._held, self._size = [data], len(data)
            if self._writes != 2:
                asyncio.get_running_loop().call_soon(self.flush)
                return
        else:
            held.append(data)
            self._size += len(data)
            if self._writes != 2 and self._size < _HELD_BYTES:
                return
        self.flush()

    def flush(self) -> None:
        held = self._held
        if held is None:
            return
        self._held = None
        if self._transport.is_closing():
            return
        if len(held) == 1:
            self._transport.write(held[0])
        else:
            self._transport.writelines(held)

    def completed(self) -> None:
        """The cycle's `on_response`: its response is whole."""
        self.flush()
        self._on_response()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        # Anything else a later uvicorn asks of its transport.
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head / body timeouts and the connection limit.

    Bound to one server's settings by `protocol_for` (uvicorn builds protocols from a class)."""

    limits: ClassVar[HttpSettings] = HttpSettings()
    busy_response: ClassVar[bytes] = b""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._in_head = False  # part of a request head has arrived, not all of it
        self._rejected = False

    # -------------------------------------------------------------------------------- connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._reject(transport)
            return
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.limits.header_timeout_seconds, self._head_timed_out)

    def _reject(self, transport: asyncio.Transport) -> None:
        # Not added to the server's connections: it neither counts against the limit nor delays shutdown.
        self._rejected = True
        self.transport = transport
        metrics.observe_http_closed("max_connections")
        transport.write(self.busy_response)
        if transport.can_write_eof():
            transport.write_eof()
        self._head_timer = self.loop.call_later(_REJECT_LINGER_SECONDS, transport.close)

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return  # the request of a refused connection is read and dropped
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        # The WebSocket protocol takes the transport over, and this protocol never hears of it again
        # (no connection_lost). on_message_complete has normally cancelled the body timer already; this
        # makes sure nothing armed here can fire on (and close) the upgraded connection.
        self._in_head = False
        self._cancel_timers()
        super().handle_websocket_upgrade()

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    # -------------------------------------------------------------------------------- parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        if self._head_timer is None:  # a new request on a kept-alive connection: timed from its first byte
            self._head_timer = self.loop.call_later(self.limits.header_timeout_seconds, self._head_timed_out)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:  # not a WebSocket upgrade, which makes no cycle
            writer = _Coalescing(self.transport, cycle.on_response)
            cycle.transport, cycle.on_response = writer, writer.completed  # type: ignore[assignment]
        # Armed for every request, cancelled by on_message_complete: for a request without a body that
        # comes within the same feed of bytes.
        self._body_timer = self.loop.call_later(self.limits.body_timeout_seconds, self._body_timed_out)

    def on_message_complete(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    # -------------------------------------------------------------------------------- timeouts
    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A response is still going out and a pipelined head behind it is incomplete: never cut the
            # response; the connection ends after it.
            self.cycle.keep_alive = False
            return
        metrics.observe_http_closed("header_timeout")
        if self._in_head:  # a client that sent nothing (a preconnect) gets no unsolicited response
            self.transport.write(_HEAD_TIMEOUT)
        self.transport.close()

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:
            # We stopped reading (the app has not taken the body buffered so far, or a pipelined request
            # waits for the one before it): not the client's stall, so it gets another period.
            self._body_timer = self.loop.call_later(self.limits.body_timeout_seconds, self._body_timed_out)
            return
        cycle = self.cycle
        if cycle.response_started and not cycle.response_complete:
            cycle.keep_alive = False  # answered without reading the body and still sending: not cut
            return
        metrics.observe_http_closed("body_timeout")
        if not cycle.response_started:
            self.transport.write(_BODY_TIMEOUT)
            # The app waiting in receive() gets http.disconnect, and whatever it sends is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


def protocol_for(limits: HttpSettings) -> type[GuardedHttpToolsProtocol]:
    busy = _raw_error(
        b"503 Service Unavailable",
        "server_error",
        "too_many_connections",
        f"The server has reached its limit of {limits.max_connections} connections; retry later.",
        b"retry-after: 1\r\n",
    )

    class Bound(GuardedHttpToolsProtocol):
        pass

    Bound.limits, Bound.busy_response = limits, busy
    return Bound


class ShimServer(uvicorn.Server):
    """uvicorn without its own signal handling: the gateway shuts all its servers down together."""

    serving: asyncio.Task[None]

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def start(self, sock: socket.socket | None = None) -> int:
        """Serve in the background (on `sock` when given); returns the bound port once listening."""
        self.serving = asyncio.create_task(self.serve(sockets=[sock] if sock is not None else None))
        while not self.started:
            if self.serving.done():
                self.serving.result()
                raise RuntimeError("the HTTP server did not start")
            await asyncio.sleep(0.01)
        port: int = self.servers[0].sockets[0].getsockname()[1]
        return port


def build_server(
    app: Any,
    host: str,
    port: int,
    limits: HttpSettings,
    grace_seconds: float,
    headers: list[tuple[str, str]] | None = None,
) -> ShimServer:
    """`headers`: sent with every response (a worker of `serve --workers N` names itself in one)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=math.ceil(grace_seconds),
        http=protocol_for(limits),
        interface="asgi3",
        # Nothing in the gateway reads the client's address or scheme (scope["client"], ["scheme"]), so
        # uvicorn's ProxyHeadersMiddleware, which rewrites them from X-Forwarded-* on every request,
        # is only cost.
        proxy_headers=False,
        # No `server: uvicorn` on every response: it tells a client nothing it needs, and an attacker
        # the server's make; one header less to build and send per response.
        server_header=False,
        # The sans-I/O implementation over the `websockets` package: it can answer a refused upgrade
        # with an HTTP response of the app's (the 401 error JSON), and pauses reading until the app
        # takes each message.
        ws="websockets-sansio",
        headers=headers,
    )
    return ShimServer(config)
