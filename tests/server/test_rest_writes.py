"""How a response leaves the REST server: what uvicorn's response cycle writes to the socket's transport.

The protocol is the gateway's own (`protocol_for`), the cycle uvicorn's; only the transport is a
recorder, so each test sees exactly the writes a socket would get.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from responses_gateway.config.models import HttpSettings
from responses_gateway.transport.rest.server import protocol_for

REQUEST = b"POST /v1/responses HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}"


class Recorder(asyncio.Transport):
    """A socket's transport that keeps what is written, one entry per write call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.writes.append(b"".join(list_of_data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _serve(app: Any, request: bytes, transport: Recorder, until: asyncio.Event) -> None:
    config = uvicorn.Config(app, lifespan="off", access_log=False, server_header=False)
    protocol = protocol_for(HttpSettings())(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(transport)
    protocol.data_received(request)
    await asyncio.wait_for(until.wait(), 5)
    for _ in range(3):  # let what the app's last send scheduled run
        await asyncio.sleep(0)
    protocol.connection_lost(None)


def test_a_unary_response_is_one_write_of_head_and_body() -> None:
    done = asyncio.Event()
    transport = Recorder()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"11")]})
        await send({"type": "http.response.body", "body": b'{"ok":true}'})
        done.set()

    asyncio.run(_serve(app, REQUEST, transport, done))
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b'\r\n\r\n{"ok":true}')


def test_each_response_on_a_kept_alive_connection_is_one_write() -> None:
    done = asyncio.Event()
    transport = Recorder()
    served = 0

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal served
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})
        served += 1
        if served == 3:
            done.set()

    asyncio.run(_serve(app, REQUEST * 3, transport, done))
    assert len(transport.writes) == 3
    assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") and w.endswith(b"\r\n\r\n{}") for w in transport.writes)


def test_a_stream_head_goes_out_alone_when_its_first_event_is_not_ready() -> None:
    head_sent, release, done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    transport = Recorder()
    after_first: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        head_sent.set()
        await release.wait()
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        after_first.extend(transport.writes)
        await send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"data: 3\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        done.set()

    async def run() -> list[bytes]:
        serving = asyncio.ensure_future(_serve(app, REQUEST, transport, done))
        await head_sent.wait()
        for _ in range(3):  # a few turns of the loop, and the first event not yet sent
            await asyncio.sleep(0)
        before_events = list(transport.writes)
        release.set()
        await serving
        return before_events

    before_events = asyncio.run(run())
    assert len(before_events) == 1 and before_events[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert before_events[0].endswith(b"transfer-encoding: chunked\r\n\r\n")  # the head alone
    assert after_first[1:] == [b"9\r\ndata: 1\n\n\r\n"]  # the first event is written as it is sent
    # What followed within one step left in one write.
    assert transport.writes[2:] == [b"9\r\ndata: 2\n\n\r\n9\r\ndata: 3\n\n\r\n0\r\n\r\n"]


def test_a_stream_head_leaves_with_its_first_event_and_later_events_at_the_next_turn() -> None:
    release, done = asyncio.Event(), asyncio.Event()
    transport = Recorder()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": True})
        await release.wait()  # the stream waits on its upstream; event 2 must not wait with it
        await send({"type": "http.response.body", "body": b""})
        done.set()

    async def run() -> list[bytes]:
        serving = asyncio.ensure_future(_serve(app, REQUEST, transport, done))
        for _ in range(5):
            await asyncio.sleep(0)
        while_waiting = list(transport.writes)
        release.set()
        await serving
        return while_waiting

    while_waiting = asyncio.run(run())
    assert len(while_waiting) == 2
    assert while_waiting[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert while_waiting[0].endswith(b"\r\n\r\n9\r\ndata: 1\n\n\r\n")
    assert while_waiting[1] == b"9\r\ndata: 2\n\n\r\n"
    assert transport.writes[2:] == [b"0\r\n\r\n"]


def test_a_large_burst_is_not_held_whole() -> None:
    done = asyncio.Event()
    transport = Recorder()
    event = b"data: " + b"x" * 3_000 + b"\n\n"

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for _ in range(40):
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        done.set()

    asyncio.run(_serve(app, REQUEST, transport, done))
    sizes = [len(w) for w in transport.writes]
    assert sum(sizes) > 120_000 and 10 <= len(sizes) <= 20  # held up to ~8 KiB at a time
    assert max(sizes) < 16_000


def test_pipelined_responses_keep_their_order() -> None:
    done = asyncio.Event()
    transport = Recorder()
    served = 0

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal served
        await receive()
        served += 1
        n = served
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"data: %d-a\n\n" % n, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: %d-b\n\n" % n, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        if n == 2:
            done.set()

    asyncio.run(_serve(app, REQUEST * 2, transport, done))
    stream = b"".join(transport.writes)
    first, second = stream.split(b"0\r\n\r\n")[:2]
    assert b"1-a" in first and b"1-b" in first and b"2-" not in first
    assert second.startswith(b"HTTP/1.1 200 OK") and b"2-a" in second and b"2-b" in second
