"""An asyncio network backend for httpcore (httpx's engine), built to make few system calls.

httpcore's default backend goes through anyio, which on every pooled request asks each idle
connection whether its socket is readable (a poll and several getpeername/getsockname calls apiece)
and sends a request's head and body in two writes. Where system calls are dear — containers, gVisor
sandboxes — that was most of the gateway's CPU per upstream call. This backend keeps each connection
in an asyncio Protocol: readability is known from what the event loop already delivered, and writes
are coalesced into one send when the response is read. httpcore's `AsyncNetworkBackend` /
`AsyncNetworkStream` interfaces are its documented extension point for this.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore

# Stop reading from the socket while this much unread data is buffered (flow control).
_HIGH_WATER = 1 << 20


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.lost: Exception | None = None
        self.closed = False
        self.paused_reading = False
        self.waiter: asyncio.Future[None] | None = None
        self.write_paused = False
        self.drain: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Any transport with the asyncio.Transport methods (uvloop's are not subclasses of it).
        self.transport = transport  # type: ignore[assignment]

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and self.transport is not None and not self.paused_reading:
            self.paused_reading = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        drain, self.drain = self.drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, protocol: _Protocol) -> None:
        self._p = protocol
        self._pending: list[bytes] = []

    @property
    def _transport(self) -> asyncio.Transport:
        transport = self._p.transport
        if transport is None:
            raise httpcore.WriteError("the connection is not open")
        return transport

    def _flush(self) -> None:
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending.clear()
            self._transport.write(data)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        p = self._p
        self._flush()  # the request is complete once its response is wanted: send it in one write
        if not p.buffer and not p.eof and not p.closed:
            p.waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await p.waiter
            except TimeoutError:
                raise httpcore.ReadTimeout("timed out waiting for the upstream") from None
        if p.buffer:
            data = bytes(p.buffer[:max_bytes])
            del p.buffer[:max_bytes]
            if p.paused_reading and len(p.buffer) < _HIGH_WATER // 2 and p.transport is not None:
                p.paused_reading = False
                p.transport.resume_reading()
            return data
        if p.lost is not None:
            raise httpcore.ReadError(str(p.lost) or type(p.lost).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._p.closed:
            raise httpcore.WriteError("the connection was closed")
        self._pending.append(buffer)
        if sum(len(b) for b in self._pending) >= _HIGH_WATER:
            self._flush()
            await self._drain(timeout)

    async def _drain(self, timeout: float | None) -> None:
        p = self._p
        if not p.write_paused or p.closed:
            return
        p.drain = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await p.drain
        except TimeoutError:
            raise httpcore.WriteTimeout("timed out writing to the upstream") from None

    async def aclose(self) -> None:
        transport = self._p.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        self._flush()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                tls = await loop.start_tls(
                    self._transport, self._p, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, ssl.SSLError) as e:
            raise httpcore.ConnectError(str(e)) from e
        self._p.transport = tls
        return self

    def get_extra_info(self, info: str) -> Any:
        p = self._p
        if info == "is_readable":  # from what the event loop delivered: no system call
            return bool(p.buffer) or p.eof or p.closed
        transport = p.transport
        if transport is None:
            return None
        key = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        return transport.get_extra_info(key)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[
            tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
        ]
        | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        protocol = _Protocol()
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(
                    lambda: protocol, host, port, local_addr=(local_address, 0) if local_address else None
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as e:
            raise httpcore.ConnectError(str(e)) from e
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():
                sock.setsockopt(*option)
        return AsyncioStream(protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[
            tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
        ]
        | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        protocol = _Protocol()
        try:
            async with asyncio.timeout(timeout):
                await loop.create_unix_connection(lambda: protocol, path)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {path}") from None
        except OSError as e:
            raise httpcore.ConnectError(str(e)) from e
        return AsyncioStream(protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
