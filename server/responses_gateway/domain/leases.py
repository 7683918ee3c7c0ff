"""Leases: no stored response stays `in_progress` after the replica running it died.

Each replica has an owner id. A response is stored with its replica's id and a lease (`lease_seconds`);
the replica renews the leases of everything it runs every quarter of that (one statement per store for
all of them). Every replica also looks, as often, for running responses whose lease ended: their
replica stopped (SIGKILL, OOM, node loss) without ending them. It takes each over atomically (one
replica alone ends it) and ends it `failed`, with a `response.failed` in its event log so that readers
following it from any replica see the end. A single SQLite replica has no one else: what is running at
its start-up was left by its own crash, and is failed then.

The same loop deletes responses older than `ttl`, and background `store: false` responses
`stateless_background_seconds` after they ended.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time

from responses_gateway.aio import cancel_and_wait
from responses_gateway.config.models import StoreSettings
from responses_gateway.contract import events as ev
from responses_gateway.contract.ids import new_id
from responses_gateway.store.base import ResponseStore, StoredResponse, StoreUnavailable
from responses_gateway.v1 import response_pb2

log = logging.getLogger(__name__)

REPLICA_STOPPED = "The gateway replica running this response stopped before the response was complete."
_EXPIRE_EVERY = 60.0  # seconds between two TTL sweeps (deleting is not urgent)


class Leases:
    def __init__(self, store: ResponseStore, settings: StoreSettings) -> None:
        self.store = store
        self.seconds = settings.lease_seconds
        self.ttl = settings.ttl
        # Readable in the store (which pod), unique per process start.
        self.owner = f"{socket.gethostname()}/{os.getpid()}/{new_id('r')[2:10]}"
        self.held: set[str] = set()
        self.forget_seconds = settings.stateless_background_seconds
        # Background `store: false` responses that ended here: deleted when due (kept in memory, so a
        # crash in between leaves them to the ttl).
        self._forget: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_expiry = 0.0

    def until(self) -> float:
        return time.time() + self.seconds

    def hold(self, response_id: str) -> None:
        self.held.add(response_id)

    def release(self, response_id: str) -> None:
        self.held.discard(response_id)

    def forget_later(self, response_id: str) -> None:
        self._forget[response_id] = time.time() + self.forget_seconds

    async def start(self) -> None:
        """Recover what a crash left (a store of one replica), then keep the leases in a task."""
        if not self.store.shared:
            await self.reap(math.inf)
        self._task = asyncio.create_task(self._loop(), name="store-leases")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _loop(self) -> None:
        interval = self.seconds / 4
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tick()
            except StoreUnavailable as e:
                log.debug("lease upkeep skipped: %s", e.why)  # the health checks report the store
            except Exception:
                log.exception("lease upkeep failed unexpectedly")

    async def tick(self) -> None:
        await self.store.renew(self.owner, sorted(self.held), self.until())
        await self.reap(time.time())
        now = time.time()
        for rid in [rid for rid, due in self._forget.items() if due <= now]:
            await self.store.delete(rid)
            del self._forget[rid]
        if self.ttl is not None and now - self._last_expiry >= min(_EXPIRE_EVERY, self.ttl):
            self._last_expiry = now
            gone = await self.store.expire(now - self.ttl)
            if gone:
                log.info("deleted %d responses older than the store's ttl", gone)

    async def reap(self, expired_before: float) -> int:
        """End `failed` the running responses whose lease ended before this time."""
        claimed = await self.store.claim_expired(self.owner, expired_before, self.until())
        for record in claimed:
            await self._fail(record)
        if claimed:
            log.warning("failed %d responses whose replica stopped while running them", len(claimed))
        return len(claimed)

    async def _fail(self, record: StoredResponse) -> None:
        response = response_pb2.Response()
        response.CopyFrom(record.response)
        response.status = response_pb2.RESPONSE_STATUS_FAILED
        response.ClearField("completed_at")
        response.error.code = response_pb2.RESPONSE_ERROR_CODE_SERVER_ERROR
        response.error.message = REPLICA_STOPPED
        logged = await self.store.read_events(response.id, -1)
        ended = ev.response_of(logged[-1]) if logged and ev.is_terminal(logged[-1]) else None
        if ended is not None:
            # It died between logging its terminal event and storing its final state.
            await self.store.update_response(ended)
            return
        if logged or response.background:
            failed = ev.lifecycle_event(ev.FAILED, response)
            failed.sequence_number = logged[-1].sequence_number + 1 if logged else 0
            await self.store.append_events(response.id, [failed])
        await self.store.update_response(response)
