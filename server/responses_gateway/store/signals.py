"""In-process fan-out of "response X changed" to the watchers in this process.

Every backend uses it: SQLite calls `notify` after its own writes; the shared backends call it from
their listener (PostgreSQL NOTIFY, Redis pub/sub) for changes any replica made, this one included.
"""

from __future__ import annotations

import asyncio
import contextlib
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
