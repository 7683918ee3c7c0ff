"""A lean pooled HTTP/1.1 client for upstream calls: asyncio Protocols and httptools' C parser.

The upstream call is on the path of every request, and httpcore (with h11 and httpx's models) cost
~400 µs of CPU per call there; this client does the same job in a fraction of that. What it keeps:
keep-alive connection reuse per origin (idle connections expire after `KEEPALIVE_EXPIRY`), TLS through
an `ssl.SSLContext` (the roots httpx used: `SSL_CERT_FILE` / `SSL_CERT_DIR`, else certifi's), a connect timeout, a read timeout per wait for
data, a write timeout while the socket is backed up, and one `write` per request (head and body
together). What it leaves out, as the gateway never needs it: proxies (httpcore's pool had none
configured either), redirects, cookies, HTTP/2, content decoding (upstreams are not asked to
compress: no `accept-encoding` goes out) and a cap on concurrent connections.

Its failures are the exceptions below, which `http.transport_errors` maps to domain errors.
"""

from __future__ import annotations

import asyncio
import collections
import os
import ssl
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterable, Mapping

import certifi
import httptools

from responses_gateway.errors import GatewayError, Reason

KEEPALIVE_EXPIRY = 60.0
MAX_IDLE = 64
# Stop reading from the socket while this much unread body is buffered (flow control).
_HIGH_WATER = 1 << 20


class UpstreamHTTPError(Exception):
    """Any failure of the upstream exchange."""


class ConnectFailed(UpstreamHTTPError):
    pass


class Timeout(UpstreamHTTPError):
    pass


class Disconnected(UpstreamHTTPError):
    """The connection broke or ended before the response did."""


class ProtocolViolation(UpstreamHTTPError):
    """The upstream's bytes are not HTTP/1.1, or a request header cannot be sent."""


class Headers:
    """Response headers: case-insensitive `get`; repeated names joined with ", " (RFC 9110)."""

    __slots__ = ("_d",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]] = ()) -> None:
        d: dict[str, str] = {}
        for name, value in raw:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            d[key] = f"{d[key]}, {text}" if key in d else text
        self._d = d

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._d.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._d[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._d

    def items(self) -> Iterable[tuple[str, str]]:
        return self._d.items()


def _expire(waiter: asyncio.Future[None], what: str) -> None:
    if not waiter.done():
        waiter.set_exception(Timeout(what))


class _Connection(asyncio.Protocol):
    """One socket and the response being read from it (httptools calls the `on_*` methods)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.lost: Exception | None = None
        self.idle_since = 0.0
        self.waiter: asyncio.Future[None] | None = None
        self.drain: asyncio.Future[None] | None = None
        self.reading_paused = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.keep_alive = False
        self.complete = False
        self.framed = False  # content-length or chunked: EOF before the end is a failure
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.error: Exception | None = None
        self.received = False  # any byte of this exchange's response

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self.error = ProtocolViolation(f"invalid HTTP response: {e}")
            self._abort()
        if self.buffered > _HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        if self.headers_done and not self.complete and not self.framed:
            self.complete = True  # a body delimited by the end of the connection
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc
        self._wake()
        drain, self.drain = self.drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self) -> None:
        self.drain = self.loop.create_future()

    def resume_writing(self) -> None:
        drain, self.drain = self.drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    # httptools
    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length" or (lower == b"transfer-encoding" and b"chunked" in value.lower()):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        # Asked now: llhttp answers for the message being parsed, not after it has ended.
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete = True

    # the client's side
    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def failure(self) -> Exception:
        if self.error is not None:
            return self.error
        if self.lost is not None:
            return Disconnected(str(self.lost) or type(self.lost).__name__)
        return Disconnected("the upstream closed the connection before the response ended")

    async def wait(self, timeout: float) -> None:
        """Until more of the response arrives, the connection ends or `timeout` passes."""
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        waiter = self.waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, _expire, waiter, "timed out waiting for the upstream")
        try:
            await waiter
        finally:
            timer.cancel()

    async def send(self, data: bytes, timeout: float) -> None:
        if self.transport is None or self.closed:
            raise Disconnected("the connection was closed")
        self._reset()
        self.transport.write(data)
        drain = self.drain
        if drain is not None:  # the socket is backed up: wait for it (a large body)
            timer = self.loop.call_later(timeout, _expire, drain, "timed out writing to the upstream")
            try:
                await drain
            finally:
                timer.cancel()
            if self.closed and not self.headers_done:
                raise self.failure()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class Response:
    """An upstream response: status and headers at once, the body as it arrives."""

    def __init__(
        self, pool: Pool, conn: _Connection, read_timeout: float, max_bytes: int | None, provider: str
    ) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn
        self._read_timeout = read_timeout
        self._max_bytes = max_bytes
        self._provider = provider
        self._seen = 0
        self._content: bytes | None = None
        self.status_code = conn.status
        self.headers = Headers(conn.raw_headers)

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive; past `max_bytes` an error, never a partial relay."""
        conn = self._conn
        if conn is None:
            return
        while True:
            chunks = conn.chunks
            while chunks:
                chunk = chunks.popleft()
                conn.buffered -= len(chunk)
                if self._max_bytes is not None:
                    self._seen += len(chunk)
                    if self._seen > self._max_bytes:
                        self.aclose_now()
                        raise GatewayError(
                            Reason.UPSTREAM_ERROR,
                            f"{self._provider} sent a response larger than the deployment's limit of "
                            f"{self._max_bytes} bytes (max_response_bytes).",
                        )
                yield chunk
            if conn.complete:
                self._release()
                return
            if conn.closed or conn.error is not None:
                failure = conn.failure()
                self.aclose_now()
                raise failure
            await conn.wait(self._read_timeout)

    async def aread(self) -> bytes:
        if self._content is None:
            parts = [chunk async for chunk in self.aiter_raw()]
            self._content = parts[0] if len(parts) == 1 else b"".join(parts)
        return self._content

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise RuntimeError("the response body has not been read (aread)")
        return self._content

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(conn)

    def aclose_now(self) -> None:
        """Give the connection back if the response ended, else close it (the rest is never read)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.complete:  # all of it arrived, read or not: the connection can serve another
            self._pool.release(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        self.aclose_now()


class Pool:
    """Keep-alive connections to one origin (`scheme://host:port`)."""

    def __init__(self, base_url: str, ssl_context: ssl.SSLContext | None = None) -> None:
        split = urllib.parse.urlsplit(base_url)
        if split.scheme not in ("http", "https") or not split.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.tls = split.scheme == "https"
        self.host = split.hostname
        default = 443 if self.tls else 80
        self.port = split.port or default
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = host if self.port == default else f"{host}:{self.port}"
        self.prefix = urllib.parse.quote(split.path.rstrip("/"), safe="/%:@!$&'()*+,;=~")
        self._ssl = (ssl_context or default_ssl_context()) if self.tls else None
        self._idle: list[_Connection] = []

    async def _connect(self, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        conn = _Connection(loop)
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    lambda: conn,
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
        except TimeoutError:
            raise Timeout(f"timed out connecting to {self.authority}") from None
        except (OSError, ssl.SSLError) as e:
            raise ConnectFailed(str(e) or type(e).__name__) from e
        return conn

    def _take_idle(self) -> _Connection | None:
        idle = self._idle
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < KEEPALIVE_EXPIRY:
                return conn
            conn.close()
        return None

    def release(self, conn: _Connection) -> None:
        if conn.closed or not conn.keep_alive or len(self._idle) >= MAX_IDLE:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.append(conn)

    async def send(
        self,
        head: bytes,
        body: bytes,
        *,
        connect_timeout: float,
        read_timeout: float,
        write_timeout: float,
        max_bytes: int | None,
        provider: str,
    ) -> Response:
        """Send one request (`head` ends with the blank line) and wait for its status and headers.

        A kept-alive connection can be closed by the upstream (its idle timeout) just as it is reused,
        before the event loop has seen the close. When a reused connection ends with not one byte of
        response, the request goes once more on a new connection: the upstream answered nothing, and
        a retry on a new connection is what the router would do with the same failure anyway.
        """
        data = head + body if body else head
        conn = self._take_idle()
        if conn is not None:
            try:
                await self._exchange(conn, data, read_timeout, write_timeout)
                return Response(self, conn, read_timeout, max_bytes, provider)
            except Disconnected:
                if conn.received:
                    raise
        conn = await self._connect(connect_timeout)
        await self._exchange(conn, data, read_timeout, write_timeout)
        return Response(self, conn, read_timeout, max_bytes, provider)

    async def _exchange(
        self, conn: _Connection, data: bytes, read_timeout: float, write_timeout: float
    ) -> None:
        try:
            await conn.send(data, write_timeout)
            while not conn.headers_done:
                if conn.closed or conn.error is not None:
                    raise conn.failure()
                await conn.wait(read_timeout)
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()


def request_head(
    method: str, target: str, authority: str, headers: Iterable[tuple[str, str]], length: int | None
) -> bytes:
    """The request line and headers. A name or value that would split the head (CR, LF, NUL) or is
    not ASCII cannot go out: a ProtocolViolation, not a forged header."""
    lines = [f"{method} {target} HTTP/1.1"]
    has_host = False
    for name, value in headers:
        if name == "host":
            has_host = True
        lines.append(f"{name}: {value}")
    if not has_host:
        lines.insert(1, f"host: {authority}")
    if length is not None:
        lines.append(f"content-length: {length}")
    text = "\r\n".join(lines)
    breaks = len(lines) - 1
    if text.count("\n") != breaks or text.count("\r") != breaks or "\0" in text:
        raise ProtocolViolation("a request header contains a line break")
    try:
        return text.encode("ascii") + b"\r\n\r\n"
    except UnicodeEncodeError:
        raise ProtocolViolation("a request header is not ASCII") from None


def query_string(params: Mapping[str, object] | None) -> str:
    if not params:
        return ""
    pairs = [(k, _param(v)) for k, v in params.items() if v is not None]
    return "?" + urllib.parse.urlencode(pairs) if pairs else ""


def _param(value: object) -> str:
    # httpx's spelling of query values: booleans lower-case, the rest str().
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def default_ssl_context() -> ssl.SSLContext:
    """Certificate verification as httpx's default context did it: the roots of `SSL_CERT_FILE` or
    `SSL_CERT_DIR` when set (a private CA bundle), else certifi's."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return ssl.create_default_context(cafile=certifi.where())
