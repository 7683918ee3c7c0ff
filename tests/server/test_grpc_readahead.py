"""transport/grpc/readahead.py: the stream's events are read by a task of their own ahead of the sends,
on a real event loop. Over a real channel, every stream test of tests/server/test_grpc.py goes
through it (the events, a client's cancel mid-stream, the upstream errors)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from responses_gateway.transport.grpc.readahead import read_ahead


class Source:
    """A stream of ints that counts what it was asked for, then waits (forever unless released)."""

    def __init__(self, count: int, *, fail: Exception | None = None) -> None:
        self.count, self.fail = count, fail
        self.produced = 0
        self.cleaned = False
        self.release = asyncio.Event()

    async def events(self) -> AsyncGenerator[int, None]:
        try:
            for i in range(self.count):
                self.produced += 1
                yield i
            if self.fail is not None:
                raise self.fail
            await self.release.wait()
        finally:
            self.cleaned = True


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_the_first_event_goes_out_while_the_stream_waits_for_more() -> None:
    source = Source(1)
    events = source.events()
    ahead = read_ahead(events)
    assert await asyncio.wait_for(anext(ahead), 5) == 0
    await ahead.aclose()
    await events.aclose()
    assert source.cleaned


async def test_a_slow_consumer_holds_at_most_high_events_and_reading_resumes_at_half() -> None:
    source = Source(100)
    events = source.events()
    ahead = read_ahead(events, high=8)
    assert await anext(ahead) == 0
    await _settle()
    assert source.produced == 8  # read ahead up to `high`, then paused
    assert [await anext(ahead) for _ in range(2)] == [1, 2]
    await _settle()
    assert source.produced == 8  # five still buffered: above half, still paused
    assert await anext(ahead) == 3
    await _settle()
    assert source.produced == 12  # down to half: reading resumed, up to `high` again
    rest = [await anext(ahead) for _ in range(96)]
    assert rest == list(range(4, 100))  # every event once, in order
    await ahead.aclose()
    await events.aclose()


async def test_the_stream_ending_ends_the_iteration_after_its_last_event() -> None:
    source = Source(5)
    source.release.set()
    events = source.events()
    assert [e async for e in read_ahead(events)] == [0, 1, 2, 3, 4]
    assert source.cleaned


async def test_an_error_reaches_the_consumer_after_the_events_before_it() -> None:
    source = Source(3, fail=ValueError("upstream broke"))
    got: list[int] = []
    with pytest.raises(ValueError, match="upstream broke"):
        async for event in read_ahead(source.events()):
            got.append(event)
    assert got == [0, 1, 2]


async def test_closing_cancels_the_reading_inside_the_stream_and_its_clean_up_has_run() -> None:
    source = Source(2)
    events = source.events()
    ahead = read_ahead(events)
    assert await anext(ahead) == 0
    await _settle()  # the reading task now waits inside the stream
    assert not source.cleaned
    await ahead.aclose()
    assert source.cleaned  # the stream's finally ran before aclose returned
    await events.aclose()  # what Relay does next: no "already running"


async def test_a_consumer_cancelled_while_waiting_stops_the_reading() -> None:
    source = Source(0)
    events = source.events()
    ahead = read_ahead(events)
    waiting = asyncio.ensure_future(anext(ahead))
    await _settle()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await ahead.aclose()
    assert source.cleaned


async def test_a_cancel_of_the_reading_task_from_elsewhere_ends_the_consumer_cancelled() -> None:
    async def cancelled_inside() -> AsyncGenerator[int, None]:
        yield 0
        task = asyncio.current_task()
        assert task is not None
        task.cancel()  # as a shutdown's interrupt that the stream does not absorb
        await asyncio.sleep(1)
        yield 1

    ahead = read_ahead(cancelled_inside())
    assert await anext(ahead) == 0
    with pytest.raises(asyncio.CancelledError):
        await anext(ahead)
