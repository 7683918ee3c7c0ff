"""Responses running in this process that readers can follow: background runs and their streams.

A background response keeps running when its first reader goes away; any number of readers can follow
it from any sequence number. Once it ends, its events stay in the store's event log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from responses_gateway.v1 import events_pb2


class LiveRun:
    def __init__(self) -> None:
        self.events: list[events_pb2.ResponseStreamEvent] = []
        self.done = False
        self.task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    async def publish(self, event: events_pb2.ResponseStreamEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def close(self) -> None:
        async with self._changed:
            self.done = True
            self._changed.notify_all()

    async def follow(self, after: int = -1) -> AsyncIterator[events_pb2.ResponseStreamEvent]:
        """Events with sequence_number > after, then each new one as it is published, until done."""
        i = max(0, after + 1)
        while True:
            async with self._changed:
                while i >= len(self.events) and not self.done:
                    await self._changed.wait()
                pending = self.events[i:]
                finished = self.done
            for event in pending:
                yield event
            i += len(pending)
            if finished and i >= len(self.events):
                return


class LiveRuns:
    def __init__(self) -> None:
        self._runs: dict[str, LiveRun] = {}

    def add(self, response_id: str, run: LiveRun) -> None:
        self._runs[response_id] = run

    def get(self, response_id: str) -> LiveRun | None:
        return self._runs.get(response_id)

    def remove(self, response_id: str) -> None:
        self._runs.pop(response_id, None)

    def all(self) -> list[LiveRun]:
        return list(self._runs.values())
