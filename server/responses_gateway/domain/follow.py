"""Following a response another replica runs: its logged events after a sequence number, then each new
batch as the store signals it, until the terminal event or the end of the run.

The replica running it appends events in batches (at most `stream_event_flush_ms` late) and signals
each batch; this reader wakes on the signal and reads what is new, so it sees the original sequence
numbers and nothing twice. A signal that got lost costs one `recheck` interval, not the stream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from responses_gateway.contract import events as ev
from responses_gateway.store.base import ResponseStore, is_running
from responses_gateway.v1 import events_pb2

Event = events_pb2.ResponseStreamEvent


async def follow_stored(
    store: ResponseStore, response_id: str, after: int, *, recheck: float = 2.0
) -> AsyncGenerator[Event, None]:
    async with store.watch(response_id) as watch:
        while True:
            events = await store.read_events(response_id, after)
            for event in events:
                yield event
                after = event.sequence_number
                if ev.is_terminal(event):
                    return
            if not events:
                stored = await store.get(response_id)
                if stored is None:
                    return  # deleted while being read
                if not is_running(stored.response):
                    # Ended (a cancelled run logs no terminal event): what it logged last is in.
                    for event in await store.read_events(response_id, after):
                        yield event
                    return
            await watch.wait(recheck)
