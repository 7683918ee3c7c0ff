"""What every backend's key store must do alike (store/keys.py), on real SQLite, PostgreSQL and Redis.
Two stores on the same database stand for two replicas: their counters are one."""

from __future__ import annotations

import asyncio
import time

from responses_gateway.store.base import ResponseStore, StoredResponse
from responses_gateway.store.factory import key_store
from responses_gateway.store.keys import BUDGET, REQUESTS, TOKENS, Hit, KeyRecord, SpendRow
from tests.store.conftest import OpenStore
from tests.store.test_conformance import response


def key(key_id: str, **kw: object) -> KeyRecord:
    return KeyRecord(key_id=key_id, key_name=f"sk-...{key_id[-4:]}", created_at=time.time(), **kw)  # type: ignore[arg-type]


async def test_create_get_replace_delete(store: ResponseStore) -> None:
    keys = key_store(store)
    k = key("aaaa1111", key_alias="alpha", models=["m1"], rpm_limit=3, metadata={"env": "prod"})
    assert await keys.create_key(k) is True
    assert await keys.create_key(key("aaaa1111")) is False  # the id is taken
    assert await keys.create_key(key("bbbb2222", key_alias="alpha")) is False  # the alias is taken
    got = await keys.get_key("aaaa1111")
    assert got == k
    assert await keys.find_alias("alpha") == k
    assert await keys.get_key("nope") is None and await keys.find_alias("nope") is None

    k.key_alias, k.tpm_limit = "beta", 100
    assert await keys.replace_key(k) is True
    assert await keys.find_alias("alpha") is None
    assert (await keys.find_alias("beta")) == k
    assert await keys.replace_key(key("cccc3333")) is False  # not stored
    assert await keys.create_key(key("dddd4444", key_alias="gamma")) is True
    k.key_alias = "gamma"
    assert await keys.replace_key(k) is False  # another key holds that alias
    assert (await keys.get_key("aaaa1111")) is not None

    assert await keys.delete_keys(["aaaa1111", "nope"]) == ["aaaa1111"]
    assert await keys.get_key("aaaa1111") is None and await keys.find_alias("beta") is None
    assert await keys.delete_keys(["aaaa1111"]) == []


async def test_list_filters_and_pages(store: ResponseStore) -> None:
    keys = key_store(store)
    for i in range(5):
        k = key(f"key{i:05d}", user_id="u1" if i % 2 == 0 else "u2", team_id="t1")
        k.created_at = 1000.0 + i
        assert await keys.create_key(k)
    page, total = await keys.list_keys(user_id=None, team_id=None, offset=0, limit=2)
    assert total == 5 and [k.key_id for k in page] == ["key00004", "key00003"]  # newest first
    page, total = await keys.list_keys(user_id="u1", team_id="t1", offset=1, limit=10)
    assert total == 3 and [k.key_id for k in page] == ["key00002", "key00000"]
    page, total = await keys.list_keys(user_id=None, team_id="t2", offset=0, limit=10)
    assert (page, total) == ([], 0)


async def test_counters_are_shared_and_atomic(open_stores: OpenStore) -> None:
    a, b = key_store(await open_stores()), key_store(await open_stores())
    until = time.time() + 60
    hits = [Hit("k1", REQUESTS, 7, 1, until), Hit("k1", TOKENS, 7, 0, until)]
    # Two replicas counting at once: every request counted once, each sees a distinct total.
    results = await asyncio.gather(*(store.count(hits) for store in (a, b) for _ in range(10)))
    assert sorted(r[0] for r in results) == [float(n) for n in range(1, 21)]
    assert all(r[1] == 0.0 for r in results)
    assert await b.count([Hit("k1", TOKENS, 7, 150, until), Hit("k1", BUDGET, 0, 0.25, 0)]) == [150.0, 0.25]
    assert await a.count([Hit("k1", REQUESTS, 7, 0, until), Hit("k1", REQUESTS, 8, 0, until)]) == [20.0, 0.0]
    assert await a.count([]) == []


async def test_spend_rows_sum_per_group(open_stores: OpenStore) -> None:
    a, b = key_store(await open_stores()), key_store(await open_stores())
    await a.add_spend([SpendRow("2026-01-01", "k1", "t", "u", "m", 0.5, 1, 10, 20)])
    await b.add_spend(
        [
            SpendRow("2026-01-01", "k1", "t", "u", "m", 0.25, 1, 5, 5),
            SpendRow("2026-01-02", "k2", "", "", "m2", 1.0, 2, 0, 0),
        ]
    )
    rows = sorted(await a.spend_rows("2026-01-01", "2026-01-31", None), key=lambda r: r.group)
    assert rows == [
        SpendRow("2026-01-01", "k1", "t", "u", "m", 0.75, 2, 15, 25),
        SpendRow("2026-01-02", "k2", "", "", "m2", 1.0, 2, 0, 0),
    ]
    assert [r.key_id for r in await b.spend_rows("2026-01-02", "2026-01-02", None)] == ["k2"]
    assert [r.day for r in await b.spend_rows("2026-01-01", "2026-12-31", "k1")] == ["2026-01-01"]
    assert await b.spend_rows("2025-01-01", "2025-12-31", None) == []


async def test_response_owner(store: ResponseStore) -> None:
    keys = key_store(store)
    await store.put(StoredResponse(response("resp_owned"), [], "d", "u", key_id="k1"))
    await store.put(StoredResponse(response("resp_master"), [], "d", "u"))
    assert await keys.response_owner("resp_owned") == "k1"
    assert await keys.response_owner("resp_master") == ""
    assert await keys.response_owner("resp_none") is None
    got = await store.get("resp_owned")
    assert got is not None and got.key_id == "k1"
    await store.delete("resp_owned")
    assert await keys.response_owner("resp_owned") is None


async def test_purge_counters_keeps_live_ones(store: ResponseStore) -> None:
    keys = key_store(store)
    now = time.time()
    await keys.count([Hit("k1", REQUESTS, 1, 5, now + 60), Hit("k1", BUDGET, 0, 2, 0)])
    await keys.purge_counters(now)
    assert await keys.count([Hit("k1", REQUESTS, 1, 0, now + 60), Hit("k1", BUDGET, 0, 0, 0)]) == [5.0, 2.0]
