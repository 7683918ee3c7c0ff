"""Writes a response to the store while it streams, off the path of the next delta.

Writes run in order on a chain of tasks; event-log rows are batched. `finish` awaits everything before
the terminal event is sent, so a follow-up request (GET, previous_response_id) reads what the client saw.

When the store fails (`StoreUnavailable`), the recorder keeps the first failure in `failure` and skips
the writes after it (a record with holes would be worse than a stale one); the pipeline then sends
`failed_terminal(...)` instead of the terminal event it has, so no client is told of a response the
store does not hold.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from responses_gateway.domain.assembler import Assembler
from responses_gateway.domain.leases import Leases
from responses_gateway.store.base import ResponseStore, StoredResponse, StoreUnavailable, is_running
from responses_gateway.v1 import events_pb2, items_pb2, response_pb2

log = logging.getLogger(__name__)

_BATCH = 64


class Recorder:
    def __init__(
        self,
        store: ResponseStore,
        input_items: list[items_pb2.Item],
        *,
        deployment: str,
        upstream_id: str,
        log_events: bool,
        flush_seconds: float = 0.05,
        leases: Leases | None = None,
        forget: bool = False,
        key_id: str = "",
    ) -> None:
        self._store = store
        self._leases = leases
        self._forget = forget
        self._key_id = key_id  # the virtual key that made the response (StoredResponse.key_id)
        self._input = input_items
        self._deployment = deployment
        self._upstream_id = upstream_id
        self._log_events = log_events
        self._flush_seconds = flush_seconds
        self._timer: asyncio.TimerHandle | None = None
        self._response_id = ""
        self._buffer: list[events_pb2.ResponseStreamEvent] = []
        self._task: asyncio.Task[None] | None = None
        self.started = False
        self.stored = False  # the first write (the response and its input items) went in
        self.failure: StoreUnavailable | None = None

    def _then(self, write: Callable[[], Awaitable[None]]) -> None:
        previous = self._task

        async def run() -> None:
            if previous is not None:
                await previous
            if self.failure is not None:
                return
            try:
                await write()
            except StoreUnavailable as e:
                self.failure = e

        self._task = asyncio.ensure_future(run())

    def start(self, response: response_pb2.Response) -> None:
        snapshot = response_pb2.Response()
        snapshot.CopyFrom(response)
        self._response_id = snapshot.id
        self.started = True
        record = StoredResponse(
            snapshot,
            self._input,
            deployment=self._deployment,
            upstream_id=self._upstream_id,
            key_id=self._key_id,
        )
        if self._leases is not None and is_running(snapshot):
            # Held from before the write: a renewal may not miss it.
            self._leases.hold(snapshot.id)
            record.owner, record.lease_until = self._leases.owner, self._leases.until()

        async def put() -> None:
            await self._store.put(record)
            self.stored = True

        self._then(put)

    async def check(self) -> None:
        """Wait for the writes so far; raise the store's failure if there was one (a background
        response is acknowledged only once the store has it)."""
        if self._task is not None:
            await self._task
        if self.failure is not None:
            raise self.failure

    def event(self, event: events_pb2.ResponseStreamEvent) -> None:
        if not self._log_events:
            return
        self._buffer.append(event)
        if len(self._buffer) >= _BATCH or self._flush_seconds <= 0:
            self._flush()
        elif self._timer is None:
            # Events wait at most `stream_event_flush_ms` for the store, however slowly they come.
            self._timer = asyncio.get_running_loop().call_later(self._flush_seconds, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._buffer = self._buffer, []
        if batch:
            rid = self._response_id
            self._then(lambda: self._store.append_events(rid, batch))

    async def finish(
        self, response: response_pb2.Response, last: events_pb2.ResponseStreamEvent | None
    ) -> None:
        """Store the final response (and the rest of the event log) and wait until it is written; a
        failure of the store is left in `failure`, not raised."""
        first_write = not self.started
        if first_write:
            self.start(response)  # a unary call's one write: the final response itself
        if last is not None:
            self.event(last)
        self._flush()
        if not first_write:
            final = response_pb2.Response()
            final.CopyFrom(response)
            self._then(lambda: self._store.update_response(final))
        if self._task is not None:
            await self._task
        self._release()

    def _release(self) -> None:
        """Ended (or given up on): this replica no longer renews its lease. A record the store kept
        `in_progress` after a failed final write is then failed by the lease upkeep."""
        if self._leases is not None:
            self._leases.release(self._response_id)
            if self._forget:
                self._leases.forget_later(self._response_id)

    async def failed_terminal(
        self, asm: Assembler, terminal: events_pb2.ResponseStreamEvent
    ) -> events_pb2.ResponseStreamEvent:
        """What to send instead of `terminal` after the store failed: `response.failed` (code
        `store_unavailable`) in its place, with its sequence number. Written where it still can be, so
        a record that did go in says failed rather than in progress."""
        assert self.failure is not None
        failed = asm.failure("store_unavailable", self.failure.message)
        asm.accept(failed)
        failed.sequence_number = terminal.sequence_number
        if self.stored:
            try:
                if self._log_events:
                    await self._store.append_events(self._response_id, [failed])
                await self._store.update_response(asm.response)
            except StoreUnavailable:
                pass  # the store is failing: the client has the truth, the record stays stale
        self._release()
        return failed
