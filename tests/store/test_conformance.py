"""What every store backend must do alike (the ResponseStore protocol), on real SQLite, PostgreSQL and
Redis. Two stores opened on the same database stand for two replicas."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from responses_gateway.contract import events as ev
from responses_gateway.store.base import ResponseStore, StoredResponse
from responses_gateway.v1 import events_pb2, items_pb2, response_pb2
from tests.store.conftest import OpenStore

IN_PROGRESS = response_pb2.RESPONSE_STATUS_IN_PROGRESS
COMPLETED = response_pb2.RESPONSE_STATUS_COMPLETED


def response(rid: str, status: int = IN_PROGRESS, created_at: int | None = None) -> response_pb2.Response:
    r = response_pb2.Response(id=rid, object="response", model="m", background=True)
    r.status = status  # type: ignore[assignment]
    r.created_at = int(time.time()) if created_at is None else created_at
    return r


def message(item_id: str, text: str) -> items_pb2.Item:
    item = items_pb2.Item()
    item.message.id = item_id
    item.message.role = items_pb2.MESSAGE_ROLE_USER
    item.message.content.text = text
    return item


def record(rid: str, n_items: int = 0, **kw: object) -> StoredResponse:
    items = [message(f"msg_{rid}_{i}", f"text {i}") for i in range(n_items)]
    return StoredResponse(response(rid), items, deployment="d", upstream_id="u", **kw)  # type: ignore[arg-type]


def delta(seq: int) -> events_pb2.ResponseStreamEvent:
    event = ev.text_delta("msg_x", f"d{seq}")
    event.sequence_number = seq
    return event


async def test_put_get_update_delete(store: ResponseStore) -> None:
    r = record("resp_a", 2)
    r.response.extra_fields["future_field"].string_value = "kept"
    await store.put(r)
    got = await store.get("resp_a")
    assert got is not None
    assert got.response == r.response and got.input_items == r.input_items
    assert (got.deployment, got.upstream_id) == ("d", "u")
    done = response("resp_a", COMPLETED)
    await store.update_response(done)
    got = await store.get("resp_a")
    assert got is not None and got.response.status == COMPLETED and len(got.input_items) == 2
    await store.append_events("resp_a", [delta(0)])
    assert await store.delete("resp_a") is True
    assert await store.get("resp_a") is None
    assert await store.read_events("resp_a", -1) == []
    assert await store.list_input_items("resp_a", after=None, before=None, limit=5, order="asc") is None
    assert await store.delete("resp_a") is False


async def test_put_replaces(store: ResponseStore) -> None:
    await store.put(record("resp_a", 3))
    await store.put(record("resp_a", 1))
    got = await store.get("resp_a")
    assert got is not None and len(got.input_items) == 1


async def test_input_item_pages(store: ResponseStore) -> None:
    await store.put(record("resp_p", 5))
    ids = [f"msg_resp_p_{i}" for i in range(5)]

    async def page(**kw: object) -> tuple[list[str], bool]:
        args: dict[str, object] = {"after": None, "before": None, "limit": 20, "order": "asc", **kw}
        got = await store.list_input_items("resp_p", **args)  # type: ignore[arg-type]
        assert got is not None
        return [i.message.id for i in got.items], got.has_more

    assert await page() == (ids, False)
    assert await page(order="desc") == (ids[::-1], False)
    assert await page(limit=2) == (ids[:2], True)
    assert await page(limit=2, after=ids[1]) == (ids[2:4], True)
    assert await page(limit=2, after=ids[3]) == (ids[4:], False)
    assert await page(order="desc", limit=2, after=ids[3]) == ([ids[2], ids[1]], True)
    assert await page(before=ids[3]) == (ids[:3], False)
    assert await page(order="desc", before=ids[1]) == (ids[4:1:-1], False)
    assert await page(after=ids[0], before=ids[4]) == (ids[1:4], False)
    with pytest.raises(KeyError):
        await page(after="msg_nope")


async def test_events_in_order_and_after(store: ResponseStore) -> None:
    await store.put(record("resp_e"))
    await store.append_events("resp_e", [delta(0), delta(1)])
    await store.append_events("resp_e", [delta(2)])
    assert [e.sequence_number for e in await store.read_events("resp_e", -1)] == [0, 1, 2]
    assert [e.sequence_number for e in await store.read_events("resp_e", 0)] == [1, 2]
    assert await store.read_events("resp_e", 2) == []
    assert (await store.read_events("resp_e", 0))[0] == delta(1)


async def test_leases_renew_claim_and_release(store: ResponseStore) -> None:
    now = time.time()
    await store.put(record("resp_live", owner="A", lease_until=now + 60))
    await store.put(record("resp_dead", owner="B", lease_until=now - 1))
    ended = record("resp_done", owner="B", lease_until=now - 1)
    ended.response.status = COMPLETED
    await store.put(ended)
    claimed = await store.claim_expired("C", now, now + 30)
    assert [c.response.id for c in claimed] == ["resp_dead"]
    assert await store.claim_expired("D", now, now + 30) == []  # taken once
    got = await store.get("resp_dead")
    assert got is not None and got.owner == "C" and got.lease_until == pytest.approx(now + 30, abs=1)
    await store.renew("A", ["resp_live", "resp_dead"], now + 120)  # not A's: unchanged
    live, dead = await store.get("resp_live"), await store.get("resp_dead")
    assert live is not None and live.lease_until == pytest.approx(now + 120, abs=1)
    assert dead is not None and dead.owner == "C"
    # Ending it releases the lease: nobody claims a finished response.
    await store.update_response(response("resp_live", COMPLETED))
    everything = await store.claim_expired("F", math.inf, now + 30)
    assert {c.response.id for c in everything} == {"resp_dead"}


async def test_expire_by_age(store: ResponseStore) -> None:
    old = record("resp_old", 1)
    old.response.created_at = int(time.time()) - 1000
    await store.put(old)
    await store.append_events("resp_old", [delta(0)])
    await store.put(record("resp_new", 1))
    assert await store.expire(time.time() - 500) == 1
    assert await store.get("resp_old") is None and await store.read_events("resp_old", -1) == []
    assert await store.get("resp_new") is not None


async def test_probe(store: ResponseStore) -> None:
    await store.probe()


async def test_watch_wakes_on_changes_from_another_replica(open_stores: OpenStore) -> None:
    a = await open_stores()
    b = await open_stores() if a.shared else a
    await a.put(record("resp_w"))
    async with b.watch("resp_w") as watch:
        await watch.wait(0.3)  # the put's own signal may still be on its way
        assert await watch.wait(0.05) is False
        await a.append_events("resp_w", [delta(0)])
        assert await watch.wait(5) is True
        await a.update_response(response("resp_w", COMPLETED))
        assert await watch.wait(5) is True
        assert await watch.wait(0.05) is False


async def test_cancel_request_reaches_the_replica(open_stores: OpenStore) -> None:
    a = await open_stores()
    b = await open_stores() if a.shared else a
    heard: asyncio.Queue[str] = asyncio.Queue()
    a.on_cancel = heard.put_nowait
    await b.request_cancel("resp_c")
    async with asyncio.timeout(1):
        assert await heard.get() == "resp_c"
