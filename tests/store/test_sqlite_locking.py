"""SQLite operations run on the event loop's thread without waiting for locks; when another process
(another worker of `serve --workers N`) holds the write lock, they wait on the store's thread instead,
the event loop keeps serving, and the operations after them keep their order."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from responses_gateway.store.base import StoredResponse
from responses_gateway.store.sqlite import SqliteStore
from responses_gateway.v1 import response_pb2


def _response(rid: str, status: int) -> response_pb2.Response:
    r = response_pb2.Response(id=rid, object="response", model="m", created_at=1)
    r.status = status  # type: ignore[assignment]
    return r


async def test_a_held_write_lock_neither_blocks_the_loop_nor_reorders_writes(tmp_path: Path) -> None:
    path = tmp_path / "responses.db"
    store = SqliteStore(str(path))
    await store.open()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")  # another worker's write transaction, held
        running = _response("resp_1", response_pb2.RESPONSE_STATUS_IN_PROGRESS)
        put = asyncio.create_task(store.put(StoredResponse(running, [], "d", "u")))
        done = asyncio.create_task(
            store.update_response(_response("resp_1", response_pb2.RESPONSE_STATUS_COMPLETED))
        )
        # The loop keeps running while both wait for the lock.
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not put.done() and not done.done()
        # A read needs no write lock, but it queues behind the waiting writes: it sees them.
        read = asyncio.create_task(store.get("resp_1"))
        await asyncio.sleep(0.05)
        assert not read.done()

        threading.Timer(0.1, other.rollback).start()
        started = time.monotonic()
        await asyncio.wait_for(asyncio.gather(put, done), 10)
        assert time.monotonic() - started >= 0.05
        got = await asyncio.wait_for(read, 10)
        assert got is not None and got.response.status == response_pb2.RESPONSE_STATUS_COMPLETED
        # With the queue empty, operations run inline again (and see what the thread wrote).
        assert store._queued == 0
        again = await store.get("resp_1")
        assert again is not None and again.response.status == response_pb2.RESPONSE_STATUS_COMPLETED
    finally:
        other.close()
        await store.close()


async def test_a_caller_that_stops_waiting_does_not_free_the_connection_early(tmp_path: Path) -> None:
    path = tmp_path / "responses.db"
    store = SqliteStore(str(path))
    await store.open()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        put = asyncio.create_task(
            store.put(
                StoredResponse(_response("resp_2", response_pb2.RESPONSE_STATUS_COMPLETED), [], "d", "u")
            )
        )
        await asyncio.sleep(0.05)
        put.cancel()  # e.g. the client went away
        await asyncio.sleep(0.05)
        assert store._queued == 1  # the write still owns the connection on the thread
        other.rollback()
        for _ in range(200):
            if store._queued == 0:
                break
            await asyncio.sleep(0.01)
        assert store._queued == 0
        got = await store.get("resp_2")
        assert got is not None  # the write was not abandoned half-way
    finally:
        other.close()
        await store.close()
