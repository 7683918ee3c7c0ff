"""In-process fan-out of "response X changed" to the watchers in this process.

Every backend uses it: SQLite calls `notify` after its own writes; the shared backends call it from
their listener (PostgreSQL NOTIFY, Redis pub/sub) for changes any replica made, this one included.
`WorkerBus` carries SQLite's signals to the other worker processes of `serve --workers N`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import time
from collections.abc import AsyncIterator, Callable


class _Watch:
    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def set(self) -> None:
        self._changed.set()

    async def wait(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        except TimeoutError:
            return False
        self._changed.clear()
        return True


class LocalSignals:
    def __init__(self) -> None:
        self._watches: dict[str, set[_Watch]] = {}
        self.on_cancel: Callable[[str], None] | None = None

    def notify(self, response_id: str) -> None:
        for watch in self._watches.get(response_id, ()):
            watch.set()

    def notify_all(self) -> None:
        """After the listener reconnected: changes may have been missed, so everyone looks again."""
        for watches in self._watches.values():
            for watch in watches:
                watch.set()

    def cancel(self, response_id: str) -> None:
        if self.on_cancel is not None:
            self.on_cancel(response_id)

    @contextlib.asynccontextmanager
    async def watch(self, response_id: str) -> AsyncIterator[_Watch]:
        watch = _Watch()
        self._watches.setdefault(response_id, set()).add(watch)
        try:
            yield watch
        finally:
            watches = self._watches.get(response_id)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[response_id]


class Signalling:
    """What every backend exposes of its signals alike: `on_cancel` and `watch`."""

    _signals: LocalSignals

    @property
    def on_cancel(self) -> Callable[[str], None] | None:
        return self._signals.on_cancel

    @on_cancel.setter
    def on_cancel(self, callback: Callable[[str], None] | None) -> None:
        self._signals.on_cancel = callback

    @contextlib.asynccontextmanager
    async def watch(self, response_id: str) -> AsyncIterator[_Watch]:
        async with self._signals.watch(response_id) as watch:
            yield watch


class WorkerBus:
    """Signals between the worker processes of one `serve --workers N` sharing a SQLite file.

    Each worker binds a unix datagram socket `<dir>/<pid>.sock` and sends every signal to the others'
    sockets: `c <id>` (the response changed: wake its watchers) and `x <id>` (cancel it, if it runs
    here). A datagram is one syscall per peer, no table polling, so a cancel lands within
    milliseconds. The peer list is re-read at most every `_PEERS_SECONDS`, so a restarted worker hears
    the others within that. A datagram a peer cannot take (its socket gone, its buffer full) is
    dropped: a missed "changed" costs a follower one recheck interval (domain/follow.py), and a
    dead peer's responses end through their leases."""

    _PEERS_SECONDS = 0.5

    def __init__(self, directory: str, signals: LocalSignals) -> None:
        self.directory = directory
        self._signals = signals
        self.path = os.path.join(directory, f"{os.getpid()}.sock")
        self._sock: socket.socket | None = None
        self._peers: list[str] = []
        self._peers_at = -math.inf

    def open(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a pid reused from an earlier run of the same directory
        sock.bind(self.path)
        sock.setblocking(False)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def changed(self, response_id: str) -> None:
        self._send(b"c " + response_id.encode())

    def cancel(self, response_id: str) -> None:
        self._send(b"x " + response_id.encode())

    def _peer_paths(self) -> list[str]:
        now = time.monotonic()
        if now - self._peers_at >= self._PEERS_SECONDS:
            self._peers_at = now
            try:
                names = os.listdir(self.directory)
            except OSError:
                names = []
            mine = os.path.basename(self.path)
            self._peers = [
                os.path.join(self.directory, n) for n in names if n.endswith(".sock") and n != mine
            ]
        return self._peers

    def _send(self, message: bytes) -> None:
        sock = self._sock
        if sock is None:
            return
        for peer in self._peer_paths():
            try:
                sock.sendto(message, peer)
            except (FileNotFoundError, ConnectionRefusedError):
                self._peers_at = -math.inf  # a worker went away: look again next time
            except (BlockingIOError, OSError):
                pass  # its buffer is full: dropped (see the class comment)

    def _readable(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                message = sock.recv(1024)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            kind, _, rid = message.decode("ascii", "replace").partition(" ")
            if kind == "c":
                self._signals.notify(rid)
            elif kind == "x":
                self._signals.cancel(rid)
