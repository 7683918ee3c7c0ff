"""Slow and abusive HTTP clients, over raw sockets to the real REST server (in-process, so the test can
count the process's file descriptors): incomplete request heads and bodies time out, connections past
the limit get a 503, and none of it cuts a long SSE stream."""

from __future__ import annotations

import json
import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.server.conftest import MODEL, write_config
from tests.support.inprocess import InProcessGateway
from tests.support.sse import iter_frames

HEAD_TIMEOUT = 0.5
BODY_TIMEOUT = 1.0
MAX_CONNECTIONS = 5
WAIT = 10.0  # upper bound on any wait for the server; the tests never wait for it to run out


@pytest.fixture
def start(upstream: Any, tmp_path: Path) -> Iterator[Callable[..., InProcessGateway]]:
    started: list[InProcessGateway] = []

    def start_gateway(**http: Any) -> InProcessGateway:
        limits = {
            "header_timeout_seconds": HEAD_TIMEOUT,
            "body_timeout_seconds": BODY_TIMEOUT,
            "max_connections": MAX_CONNECTIONS,
            **http,
        }
        where = tmp_path / f"gw{len(started)}"
        where.mkdir()
        cfg = write_config(
            where / "gateway.yaml", upstream[0].api_base, where / "r.db", settings={"http": limits}
        )
        started.append(InProcessGateway(cfg))
        return started[-1]

    yield start_gateway
    for gw in started:
        gw.close()


def connect(gw: InProcessGateway) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gw.gw.http_port), timeout=WAIT)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout fails the test)."""
    data = b""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"the server kept the connection open; got {data!r}")


def trickle(sock: socket.socket, data: bytes, pause: float = 0.05) -> bytes:
    """Send `data` a byte every `pause` seconds until the server answers; what it sent until it closed."""
    for byte in data:  # bounded by len(data)
        readable, _, _ = select.select([sock], [], [], pause)
        if readable:
            return read_until_closed(sock)
        sock.sendall(bytes([byte]))
    raise AssertionError("the server waited for all of it")


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def openai_error(raw: bytes, status: int) -> dict[str, Any]:
    got, headers, body = split_response(raw)
    assert got == status, raw
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    error: dict[str, Any] = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def healthz(sock: socket.socket) -> int:
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    return split_response(read_until_closed(sock))[0]


def create_errors(reason: str) -> float:
    """The in-process gateway's errors_total for POST /v1/responses with this reason."""
    labels = {"operation": "/v1/responses", "reason": reason}
    return REGISTRY.get_sample_value("responses_gateway_errors_total", labels) or 0.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def fds_return_to(baseline: int) -> int:
    deadline = time.monotonic() + WAIT
    while open_fds() > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    return open_fds()


# --------------------------------------------------------------------------------------- request head
def test_half_a_request_head_is_answered_408_and_closed(start: Callable[..., InProcessGateway]) -> None:
    gw = start()
    with connect(gw) as sock:
        sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: t\r\nContent-Type: application/js")
        err = openai_error(read_until_closed(sock), 408)
    assert err["code"] == "request_timeout" and "head" in err["message"]
    with connect(gw) as sock:
        assert healthz(sock) == 200  # the server is fine


def test_a_silent_connection_is_closed_without_a_response(start: Callable[..., InProcessGateway]) -> None:
    gw = start()
    with connect(gw) as sock:
        assert read_until_closed(sock) == b""


def test_a_head_trickled_a_byte_at_a_time_still_times_out(start: Callable[..., InProcessGateway]) -> None:
    gw = start()
    head = b"GET /v1/models HTTP/1.1\r\nHost: t\r\nX-Padding: " + b"x" * 400
    with connect(gw) as sock:
        openai_error(trickle(sock, head), 408)


def test_a_kept_alive_connection_serves_requests_spaced_beyond_the_head_timeout(
    start: Callable[..., InProcessGateway],
) -> None:
    """The head timeout counts from a request's first byte, not from the connection's opening."""
    gw = start()
    with httpx.Client(base_url=gw.http_base, timeout=WAIT, limits=httpx.Limits(max_connections=1)) as http:
        ports = set()
        for _ in range(3):
            r = http.get("/v1/models")
            assert r.status_code == 200
            ports.add(r.extensions["network_stream"].get_extra_info("socket").getsockname()[1])
            time.sleep(HEAD_TIMEOUT * 1.5)  # idle between requests (uvicorn's keep-alive is 5 s)
    assert len(ports) == 1, "the connection was not kept"


def test_half_a_head_after_a_served_request_times_out(start: Callable[..., InProcessGateway]) -> None:
    gw = start()
    with connect(gw) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.endswith(b"}"):  # bounded by the socket timeout
            chunk = sock.recv(65536)
            assert chunk, f"closed after the first response: {raw!r}"
            raw += chunk
        assert split_response(raw)[0] == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        openai_error(read_until_closed(sock), 408)


# --------------------------------------------------------------------------------------- request body
def test_a_body_shorter_than_its_content_length_is_answered_408(
    start: Callable[..., InProcessGateway],
) -> None:
    gw = start()
    cancelled, internal = (partial(create_errors, reason) for reason in ("CANCELLED", "INTERNAL"))
    cancelled_before, internal_before = cancelled(), internal()
    with connect(gw) as sock:
        sock.sendall(
            b"POST /v1/responses HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"model": '
        )
        err = openai_error(read_until_closed(sock), 408)
    assert err["code"] == "request_timeout" and "body" in err["message"]
    # The handler left waiting for the body saw the client gone: counted as such, not as a failure.
    deadline = time.monotonic() + WAIT
    while cancelled() == cancelled_before:
        assert time.monotonic() < deadline, "the handler never learnt of the timed-out body"
        time.sleep(0.05)
    assert internal() == internal_before


def test_a_trickled_body_times_out_as_a_whole(start: Callable[..., InProcessGateway]) -> None:
    """Total time, not idle time: a byte every 0.05 s never leaves the body idle for the timeout."""
    gw = start()
    with connect(gw) as sock:
        sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        openai_error(trickle(sock, b" " * 1000), 408)


# --------------------------------------------------------------------------------------- connections
def test_connections_past_the_limit_get_503_and_fds_return(start: Callable[..., InProcessGateway]) -> None:
    gw = start(header_timeout_seconds=WAIT * 3)  # the held connections must outlive the test
    baseline = open_fds()
    held = [connect(gw) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in held:  # slowloris: heads that never end
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: t\r\n")
        # The accept of each held connection has run once the server answers on a later one.
        for _ in range(3):
            with connect(gw) as extra:
                extra.sendall(b"GET /v1/models HTTP/1.1\r\nHost: t\r\n\r\n")
                raw = read_until_closed(extra)
            err = openai_error(raw, 503)
            assert err["type"] == "server_error" and err["code"] == "too_many_connections"
            assert split_response(raw)[1]["retry-after"] == "1"
        with connect(gw) as extra:  # refused before it sent anything too
            openai_error(read_until_closed(extra), 503)
        # Freeing one slot lets the next connection in.
        held.pop().close()
        deadline = time.monotonic() + WAIT
        while True:
            with connect(gw) as sock:
                if healthz(sock) == 200:
                    break
            assert time.monotonic() < deadline, "a freed slot was never reused"
            time.sleep(0.05)
    finally:
        for sock in held:
            sock.close()
    # Every socket, ours and the server's, is gone.
    assert fds_return_to(baseline) <= baseline


def test_half_open_connections_release_their_fds(start: Callable[..., InProcessGateway]) -> None:
    gw = start()
    baseline = open_fds()
    socks = [connect(gw) for _ in range(MAX_CONNECTIONS)]
    for sock in socks:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\n")
    for sock in socks:
        openai_error(read_until_closed(sock), 408)  # closed by the server, not by us
        sock.close()
    assert fds_return_to(baseline) <= baseline


# --------------------------------------------------------------------------------------- streams
def test_a_long_sse_stream_is_not_cut(start: Callable[..., InProcessGateway], fake: Any) -> None:
    gw = start()
    fake.event_delay = 0.15  # 17 events: ~2.5 s, longer than both timeouts together
    with (
        httpx.Client(base_url=gw.http_base, timeout=WAIT * 3) as http,
        http.stream("POST", "/v1/responses", json={"model": MODEL, "input": "hi", "stream": True}) as r,
    ):
        assert r.status_code == 200
        frames = list(iter_frames(r))
    assert frames[-1].data == "[DONE]"
    assert frames[-2].event == "response.completed"
    assert frames[0].event == "response.created"


def test_accepted_connections_have_nagle_off(start: Callable[..., InProcessGateway]) -> None:
    """The REST listener's socket is bound by the gateway: it must still be one asyncio turns
    TCP_NODELAY on for (with Nagle on, each small response waited ~40 ms for a delayed ACK)."""
    gw = start()
    with connect(gw) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")

        async def nodelay() -> list[int]:
            return [
                p.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                for p in gw.gw.servers[0].server_state.connections
            ]

        flags = gw.run(nodelay())
        assert flags and all(flags), flags
