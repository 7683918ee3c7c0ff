"""The pooled upstream client (`providers/h1.py` behind `providers/http.py`) against a raw loopback server
that writes exactly the bytes each test scripts: framing, keep-alive reuse, SSE splitting across reads,
limits, timeouts and the errors they map to."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable

import pytest

from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.http import UpstreamClient, iter_sse_data, transport_errors

Reply = Callable[[bytes], list[bytes]]


class RawServer:
    """Reads one request head (+ content-length body) at a time and writes the scripted reply pieces,
    flushing and pausing between them so the client sees them as separate reads."""

    def __init__(
        self, reply: Reply, *, close_after: bool = False, hang: bool = False, drop_reuse: bool = False
    ) -> None:
        self.reply = reply
        self.close_after = close_after
        self.hang = hang
        self.drop_reuse = drop_reuse  # the first connection's second request: closed unanswered
        self.requests: list[bytes] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        first = self.connections == 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                if self.drop_reuse and first and len(self.requests) > 1:
                    break
                if self.hang:
                    await asyncio.sleep(30)
                for piece in self.reply(head):
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.01)
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., asyncio.Future[str]]]:
    servers: list[asyncio.Server] = []

    async def start(reply: Reply, **kw: bool) -> tuple[str, RawServer]:
        raw = RawServer(reply, **kw)
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1", raw

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


def _fixed(status: int, body: bytes, extra: bytes = b"") -> Reply:
    return lambda _head: [
        b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n%s\r\n" % (status, len(body), extra) + body
    ]


async def test_unary_reuses_one_connection_and_sends_one_well_formed_head(serve) -> None:  # type: ignore[no-untyped-def]
    base, raw = await serve(_fixed(200, b'{"ok":true}', b"x-thing: a\r\nX-Thing: b\r\n"))
    client = UpstreamClient(base, {"Authorization": "Bearer k"}, timeout=5, stream_timeout=None)
    for _ in range(3):
        resp = await client.request(
            "POST", "/responses", content=b"{}", headers={"content-type": "application/json"}, params={"a": 1}
        )
        assert resp.status_code == 200 and resp.content == b'{"ok":true}'
        assert resp.headers.get("X-THING") == "a, b"
    assert raw.connections == 1
    head = raw.requests[0].decode()
    assert head.startswith("POST /v1/responses?a=1 HTTP/1.1\r\nhost: 127.0.0.1:")
    assert "authorization: Bearer k\r\n" in head and "content-length: 2\r\n" in head
    assert head.endswith("\r\n\r\n{}")
    await client.aclose()


async def test_chunked_body_and_close_delimited_body(serve) -> None:  # type: ignore[no-untyped-def]
    chunked = [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"6\r\n world\r\n0\r\n\r\n",
    ]
    base, raw = await serve(lambda _h: chunked)
    client = UpstreamClient(base, {}, timeout=5, stream_timeout=None)
    assert (await client.request("GET", "/x")).content == b"hello world"
    assert (await client.request("GET", "/x")).content == b"hello world"
    assert raw.connections == 1

    base, raw = await serve(lambda _h: [b"HTTP/1.1 200 OK\r\n\r\npart one, ", b"part two"], close_after=True)
    client = UpstreamClient(base, {}, timeout=5, stream_timeout=None)
    assert (await client.request("GET", "/x")).content == b"part one, part two"
    assert (await client.request("GET", "/x")).content == b"part one, part two"
    assert raw.connections == 2  # a close-delimited body cannot leave the connection reusable


async def test_sse_events_split_anywhere_and_any_line_ending(serve) -> None:  # type: ignore[no-untyped-def]
    stream = b"data: one\r\n\r\n: comment\n\nevent: x\ndata: two\ndata:  2b\n\nid: 7\r\rdata: three\r\r"
    stream += b"data: four\n\ndata: unterminated"
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncontent-length: %d\r\n\r\n"
    pieces = [head % len(stream)] + [stream[i : i + 3] for i in range(0, len(stream), 3)]
    base, _ = await serve(lambda _h: pieces)
    client = UpstreamClient(base, {}, timeout=5, stream_timeout=None)
    async with client.stream("POST", "/responses", content=b"{}") as resp:
        got = [data async for data in iter_sse_data(resp)]
    assert got == ["one", "two\n 2b", "three", "four"]


async def test_sse_needs_an_event_stream(serve) -> None:  # type: ignore[no-untyped-def]
    base, _ = await serve(_fixed(200, b"{}", b"content-type: application/json\r\n"))
    client = UpstreamClient(base, {}, timeout=5, stream_timeout=None)
    with pytest.raises(GatewayError) as caught, transport_errors("Up"):
        async with client.stream("POST", "/responses", content=b"{}") as resp:
            [d async for d in iter_sse_data(resp)]
    assert caught.value.reason is Reason.UPSTREAM_ERROR and "text/event-stream" in caught.value.message


async def test_limits_timeouts_and_broken_connections_map_to_domain_errors(serve) -> None:  # type: ignore[no-untyped-def]
    base, _ = await serve(_fixed(200, b"x" * 5000))
    client = UpstreamClient(base, {}, timeout=5, stream_timeout=None, max_bytes=1000, provider="Up")
    with pytest.raises(GatewayError) as caught, transport_errors("Up"):
        await client.request("GET", "/x")
    assert "max_response_bytes" in caught.value.message

    base, _ = await serve(_fixed(200, b""), hang=True)
    client = UpstreamClient(base, {}, timeout=0.2, stream_timeout=None)
    with pytest.raises(GatewayError) as caught, transport_errors("Up"):
        await client.request("GET", "/x")
    assert caught.value.reason is Reason.UPSTREAM_TIMEOUT and "did not answer in time" in caught.value.message

    base, _ = await serve(
        lambda _h: [b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort"], close_after=True
    )
    client = UpstreamClient(base, {}, timeout=5, stream_timeout=None)
    with pytest.raises(GatewayError) as caught, transport_errors("Up"):
        await client.request("GET", "/x")
    assert (
        caught.value.reason is Reason.UPSTREAM_UNAVAILABLE and "closed the connection" in caught.value.message
    )

    base, _ = await serve(lambda _h: [b"NOT HTTP AT ALL\r\n\r\n"])
    client = UpstreamClient(base, {}, timeout=5, stream_timeout=None)
    with pytest.raises(GatewayError) as caught, transport_errors("Up"):
        await client.request("GET", "/x")
    assert caught.value.reason is Reason.UPSTREAM_ERROR

    client = UpstreamClient("http://127.0.0.1:1/v1", {}, timeout=5, stream_timeout=None)
    with pytest.raises(GatewayError) as caught, transport_errors("Up"):
        await client.request("GET", "/x")
    assert caught.value.reason is Reason.UPSTREAM_UNAVAILABLE and "could not connect" in caught.value.message


async def test_a_timeout_the_callers_deadline_set_is_the_deadline_passing(serve) -> None:  # type: ignore[no-untyped-def]
    # The caller's seconds left shorten the upstream's timeouts; when they are what ran out, the
    # caller hears its deadline passed (gRPC DEADLINE_EXCEEDED, not retried), not that the upstream
    # is slow (UNAVAILABLE, retried elsewhere), even when the gateway's timer beats the caller's.
    base, _ = await serve(_fixed(200, b""), hang=True)
    client = UpstreamClient(base, {}, timeout=5, stream_timeout=None)
    with pytest.raises(GatewayError) as caught, transport_errors("Up", 0.2):
        await client.request("GET", "/x", timeout=0.2)
    assert caught.value.reason is Reason.DEADLINE_EXCEEDED

    # The deployment's own timeout, shorter than the caller's deadline, is the upstream's fault.
    client = UpstreamClient(base, {}, timeout=0.2, stream_timeout=None)
    with pytest.raises(GatewayError) as caught, transport_errors("Up", 5):
        await client.request("GET", "/x", timeout=5)
    assert caught.value.reason is Reason.UPSTREAM_TIMEOUT


async def test_a_header_that_would_split_the_head_never_goes_out(serve) -> None:  # type: ignore[no-untyped-def]
    base, raw = await serve(_fixed(200, b"{}"))
    client = UpstreamClient(base, {}, timeout=5, stream_timeout=None)
    for value in ("a\r\nx-forged: 1", "a\nb", "caf\u00e9"):
        with pytest.raises(GatewayError) as caught, transport_errors("Up"):
            await client.request("GET", "/x", headers={"x-custom": value})
        assert caught.value.reason is Reason.UPSTREAM_ERROR
    assert raw.requests == []


async def test_tls_with_the_roots_of_ssl_cert_file(serve, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    raw = RawServer(_fixed(200, b"secure"))
    server = await asyncio.start_server(raw.handle, "127.0.0.1", 0, ssl=server_ctx)
    base = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    try:
        # Unknown roots: the handshake fails, as a connect error.
        client = UpstreamClient(base, {}, timeout=5, stream_timeout=None)
        with pytest.raises(GatewayError) as caught, transport_errors("Up"):
            await client.request("GET", "/x")
        assert (
            caught.value.reason is Reason.UPSTREAM_UNAVAILABLE and "could not connect" in caught.value.message
        )

        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        client = UpstreamClient(base, {}, timeout=5, stream_timeout=None)
        assert (await client.request("GET", "/x")).content == b"secure"
        assert (await client.request("GET", "/x")).content == b"secure"
        assert raw.connections == 1  # one kept-alive TLS connection (the refused one never got a handler)
        await client.aclose()
    finally:
        server.close()


async def test_a_kept_alive_connection_closed_as_it_is_reused_is_retried_once_on_a_new_one(serve) -> None:  # type: ignore[no-untyped-def]
    base, raw = await serve(_fixed(200, b"fine"), drop_reuse=True)
    client = UpstreamClient(base, {}, timeout=5, stream_timeout=None)
    assert (await client.request("POST", "/x", content=b"1")).content == b"fine"
    # The upstream reads the second request on the kept-alive connection and closes it unanswered
    # (its idle timeout racing the reuse): the same request goes again on a new connection.
    assert (await client.request("POST", "/x", content=b"2")).content == b"fine"
    assert raw.connections == 2 and [r[-1:] for r in raw.requests] == [b"1", b"2", b"2"]

    # A new connection that ends unanswered is an error, not another try.
    base, raw = await serve(lambda _h: [], close_after=True)
    client = UpstreamClient(base, {}, timeout=5, stream_timeout=None)
    with pytest.raises(GatewayError) as caught, transport_errors("Up"):
        await client.request("POST", "/x", content=b"1")
    assert caught.value.reason is Reason.UPSTREAM_UNAVAILABLE and len(raw.requests) == 1
