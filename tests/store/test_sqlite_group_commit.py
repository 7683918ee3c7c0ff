"""SQLite puts of one turn of the event loop are written in one transaction (group commit), each
caller returning once its row is committed; an operation issued after a put still runs after it,
and a store that fails fails every put of the batch, reported once to the health checks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from responses_gateway import codec
from responses_gateway.store.base import StoredResponse, StoreUnavailable
from responses_gateway.store.sqlite import SqliteStore
from responses_gateway.v1 import items_pb2, response_pb2


def _record(rid: str, status: int = response_pb2.RESPONSE_STATUS_COMPLETED) -> StoredResponse:
    r = response_pb2.Response(id=rid, object="response", model="m", created_at=1)
    r.status = status  # type: ignore[assignment]
    item = codec.from_json(items_pb2.Item(), {"type": "message", "role": "user", "content": "hi"})
    return StoredResponse(r, [item], "d", "u")


async def _open(tmp_path: Path) -> tuple[SqliteStore, list[str]]:
    store = SqliteStore(str(tmp_path / "responses.db"))
    await store.open()
    statements: list[str] = []
    assert store._db is not None
    store._db.set_trace_callback(statements.append)
    return store, statements


async def test_the_puts_of_one_turn_share_one_transaction(tmp_path: Path) -> None:
    store, statements = await _open(tmp_path)
    try:
        ids = [f"resp_{i}" for i in range(8)]
        await asyncio.gather(*(store.put(_record(rid)) for rid in ids))
        begins = [s for s in statements if s.startswith("BEGIN")]
        inserts = [s for s in statements if s.startswith("INSERT OR REPLACE INTO responses")]
        assert begins == ["BEGIN IMMEDIATE"] and len(inserts) == 8 and statements.count("COMMIT") == 1
        for rid in ids:  # every row committed, items included
            got = await store.get(rid)
            assert got is not None and got.response.id == rid and len(got.input_items) == 1
        # A put on its own is one autocommit statement: nothing to share.
        statements.clear()
        await store.put(_record("resp_alone"))
        assert [s for s in statements if s.startswith(("BEGIN", "COMMIT"))] == []
        assert await store.get("resp_alone") is not None
    finally:
        await store.close()


async def test_a_batch_waits_for_more_while_puts_keep_coming_within_bounds(tmp_path: Path) -> None:
    store, statements = await _open(tmp_path)
    try:
        # Two puts a turn, turn after turn, as on a busy loop: the batch keeps growing for a few
        # turns (_BATCH_TURNS), then is written, so no put waits without bound.
        tasks = []
        for turn in range(12):
            tasks += [asyncio.create_task(store.put(_record(f"resp_{turn}_{i}"))) for i in range(2)]
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        begins = statements.count("BEGIN IMMEDIATE")
        inserts = [s for s in statements if s.startswith("INSERT OR REPLACE INTO responses")]
        assert len(inserts) == 24 and statements.count("COMMIT") == begins
        assert 2 <= begins <= 6, statements  # several puts per transaction, and more than one of them
        for turn in range(12):
            assert await store.get(f"resp_{turn}_1") is not None
    finally:
        await store.close()


async def test_an_operation_issued_after_a_put_runs_after_it(tmp_path: Path) -> None:
    store, _ = await _open(tmp_path)
    try:
        put = asyncio.create_task(store.put(_record("resp_1", response_pb2.RESPONSE_STATUS_IN_PROGRESS)))
        await asyncio.sleep(0)  # the put is waiting for the end of the turn
        assert not put.done()
        done = _record("resp_1").response
        await store.update_response(done)  # issued later: must not be overwritten by the put
        await put
        got = await store.get("resp_1")
        assert got is not None and got.response.status == response_pb2.RESPONSE_STATUS_COMPLETED
        # A read issued in the same turn as a put sees it.
        pending = asyncio.create_task(store.put(_record("resp_2")))
        await asyncio.sleep(0)
        assert await store.get("resp_2") is not None
        await pending
    finally:
        await store.close()


async def test_a_caller_that_stops_waiting_still_has_its_row_written(tmp_path: Path) -> None:
    store, _ = await _open(tmp_path)
    try:
        put = asyncio.create_task(store.put(_record("resp_gone")))
        other = asyncio.create_task(store.put(_record("resp_kept")))
        await asyncio.sleep(0)
        put.cancel()
        await other
        with pytest.raises(asyncio.CancelledError):
            await put
        assert await store.get("resp_gone") is not None and await store.get("resp_kept") is not None
    finally:
        await store.close()


async def test_a_full_store_fails_every_put_of_the_batch_and_says_so_once(tmp_path: Path) -> None:
    store, _ = await _open(tmp_path)
    reported: list[StoreUnavailable] = []
    store.on_unavailable = reported.append
    try:
        await store.put(_record("resp_before"))

        def fill(db: object) -> None:
            db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")  # type: ignore[attr-defined]

        await store.run_raw(fill)
        big = [_record(f"resp_big_{i}") for i in range(4)]
        for record in big:
            record.response.model = "x" * 20_000  # more than the file has room for
        results = await asyncio.gather(*(store.put(r) for r in big), return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert len(reported) == 1 and "full" in str(reported[0])
        assert all([await store.get(r.response.id) is None for r in big])  # none half-written
        assert await store.get("resp_before") is not None  # nothing stored before is lost
    finally:
        await store.close()
