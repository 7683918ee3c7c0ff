"""A server stream's events read ahead of grpc.aio's sends.

grpc.aio sends one message at a time and waits for grpcio's threads to finish each send before it asks
for the next, so the event loop blocks once per message. Iterated by the sends, the whole domain stream
(the upstream's SSE read, the codec's decode, the run and its assembler) ran once per message after
that wait, with the caches the other threads had just used: ~55-70 µs of the gateway's CPU per gRPC
event where the REST shim, which reads the same events in a row, spends ~20. Here a task of its own
reads the stream as fast as the upstream sends it, and the sends take the events from a buffer.

Nothing waits for the buffer to fill: the first event goes out as soon as it is read. A client slower
than its upstream holds at most `high` events here; the reading then pauses until half of them are
sent, so the backpressure still reaches the upstream. An error the stream raises reaches the sends
after the events before it. Closing (the client went away, the deadline passed) cancels the reading
task and waits for it, so the stream's own clean-up (the run's cancelled record, the upstream call's
end) has run when the caller closes the stream itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Generic, TypeVar

E = TypeVar("E")

HIGH = 256


class _Buffer(Generic[E]):
    def __init__(self, high: int) -> None:
        self.events: deque[E] = deque()
        self.high, self.low = high, high // 2
        self.ended = False
        self.failure: BaseException | None = None
        self.ready: asyncio.Future[None] | None = None  # the sends wait on it for an event, or the end
        self.room: asyncio.Future[None] | None = None  # the reading waits on it for the sends

    async def fill(self, events: AsyncIterator[E]) -> None:
        try:
            async for event in events:
                self.events.append(event)
                _wake(self.ready)
                if len(self.events) >= self.high:
                    self.room = asyncio.get_running_loop().create_future()
                    await self.room
        except Exception as e:  # handed to the sends, which raise it in their turn
            self.failure = e
        except asyncio.CancelledError as e:  # not by read_ahead's close: the sends end cancelled too
            self.failure = e
            raise
        finally:
            self.ended = True
            _wake(self.ready)

    def take(self) -> E:
        event = self.events.popleft()
        if self.room is not None and len(self.events) <= self.low:
            _wake(self.room)
            self.room = None
        return event


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


async def read_ahead(events: AsyncIterator[E], high: int = HIGH) -> AsyncGenerator[E, None]:
    """`events`, read by a task of their own up to `high` ahead of this generator's consumer, who
    closes it (`aclose`) before closing `events`: until then the task may be inside them."""
    buffer: _Buffer[E] = _Buffer(high)
    reading = asyncio.get_running_loop().create_task(buffer.fill(events))
    try:
        while True:
            if buffer.events:
                yield buffer.take()
            elif buffer.ended:
                if buffer.failure is not None:
                    raise buffer.failure
                return
            else:
                buffer.ready = asyncio.get_running_loop().create_future()
                await buffer.ready
                buffer.ready = None
    finally:
        if not reading.done():
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
