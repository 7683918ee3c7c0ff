"""What is Redis's own in the Redis store, on real redis-server processes: failing fast and clearly when
Redis is unreachable, recovering by itself (its pub/sub listener too) when a killed server comes back
on the same port, keys that expire with a ttl, and nothing left behind by delete or expire."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from responses_gateway.config.models import StoreSettings
from responses_gateway.store import redis as redis_store
from responses_gateway.store.base import StoreUnavailable
from responses_gateway.store.factory import open_store
from responses_gateway.store.redis import RedisStore
from tests.fakes.openai_upstream import serve_openai
from tests.store.conftest import fresh_database
from tests.store.test_conformance import COMPLETED, delta, record, response
from tests.support.process import GatewayProcess, clean_env, gateway_command
from tests.support.servers import Server, free_port


@contextlib.contextmanager
def redis_on(port: int, *args: str) -> Iterator[Server]:
    """A redis-server of this test's own on `port` (the session's shared one must not be killed)."""
    exe = shutil.which("redis-server")
    assert exe is not None, "redis-server is not installed: run `make test-servers`"
    data = Path(tempfile.mkdtemp(prefix="rg-redis-"))
    command = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [*command, "--dir", str(data), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, f"redis-server exited at start (rc={proc.returncode})"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert time.monotonic() < deadline, "redis-server did not listen"
            time.sleep(0.02)
        yield Server(f"redis://127.0.0.1:{port}/0", port, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An emptied database on the session's Redis."""
    settings = fresh_database("redis", request, tmp_path)
    assert settings.url is not None
    return settings.url


@pytest.fixture
async def raw(url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(url)
    yield client
    await client.aclose()


@contextlib.asynccontextmanager
async def opened(
    url: str, ttl: float | None = None, errors: list[StoreUnavailable] | None = None
) -> AsyncIterator[RedisStore]:
    store = RedisStore(url, ttl=ttl, on_unavailable=None if errors is None else errors.append)
    try:
        await store.open()
        yield store
    finally:
        await store.close()


async def keys(raw: aioredis.Redis) -> set[str]:
    return {k.decode() async for k in raw.scan_iter(match="*")}


# --- unreachable -------------------------------------------------------------------------------


async def test_open_fails_fast_and_clearly_when_nothing_listens() -> None:
    port = free_port()
    settings = StoreSettings(type="redis", url=f"redis://gw:hunter2@127.0.0.1:{port}/0")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        await open_store(settings)
    assert time.monotonic() - started < 3
    assert caught.value.why == "cannot connect to Redis (connection refused)"
    assert "hunter2" not in caught.value.message and str(port) not in caught.value.message


async def test_open_gives_up_in_seconds_on_a_server_that_never_answers() -> None:
    with socket.socket() as mute:  # accepts connections (the kernel does) and never says a word
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        port = mute.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            await open_store(StoreSettings(type="redis", url=f"redis://:pw@127.0.0.1:{port}/0"))
        assert time.monotonic() - started < 8
    assert caught.value.why == "Redis did not answer in time"


async def test_wrong_password_is_a_clear_refusal() -> None:
    port = free_port()
    with redis_on(port, "--requirepass", "right-one"):
        with pytest.raises(StoreUnavailable) as caught:
            await open_store(StoreSettings(type="redis", url=f"redis://:wrong-one@127.0.0.1:{port}/0"))
        assert caught.value.why == "Redis refused the credentials"
        assert "wrong-one" not in caught.value.message
        async with opened(f"redis://:right-one@127.0.0.1:{port}/0") as store:
            await store.probe()


async def test_a_url_redis_cannot_use_is_refused_at_open(url: str) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        await open_store(StoreSettings(type="redis", url="http://:secret@127.0.0.1:1/0"))
    assert "url" in caught.value.why and "secret" not in caught.value.message
    with pytest.raises(StoreUnavailable) as caught:
        await open_store(StoreSettings(type="redis", url=url.rsplit("/", 1)[0] + "/999"))
    assert caught.value.why == "Redis refused the session (DB index is out of range)"


# --- a server that dies and comes back -----------------------------------------------------------


async def test_killed_server_is_unavailable_then_everything_recovers_on_a_new_one() -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    errors: list[StoreUnavailable] = []
    server = redis_on(port)
    first = server.__enter__()
    try:
        async with opened(url, errors=errors) as a, opened(url) as b:
            await a.put(record("resp_1", 1))
            async with a.watch("resp_waiting") as waiting:
                first.kill()
                for call in (
                    a.get("resp_1"),
                    a.put(record("resp_2")),
                    a.append_events("resp_1", [delta(0)]),
                    a.probe(),
                    a.request_cancel("resp_1"),
                ):
                    with pytest.raises(StoreUnavailable) as caught:
                        await call
                    assert caught.value.why.startswith(("cannot connect to Redis", "the connection to Redis"))
                assert len(errors) == 5 and all(str(port) not in e.message for e in errors)
                assert await waiting.wait(0.3) is False

                with redis_on(port):  # a new, empty server on the same port
                    # The request path reconnects at once...
                    assert await a.get("resp_1") is None
                    await a.put(record("resp_3", 2))
                    got = await b.get("resp_3")
                    assert got is not None and len(got.input_items) == 2
                    # ...and the listener within its backoff, then wakes whoever watched meanwhile.
                    assert await waiting.wait(10) is True
                    heard: asyncio.Queue[str] = asyncio.Queue()
                    a.on_cancel = heard.put_nowait
                    await b.request_cancel("resp_3")
                    async with asyncio.timeout(1):
                        assert await heard.get() == "resp_3"
                    async with a.watch("resp_3") as watch:
                        await b.update_response(response("resp_3", COMPLETED))
                        assert await watch.wait(1) is True
                    await a.probe()
    finally:
        server.__exit__(None, None, None)


async def test_a_silent_pubsub_connection_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that stops answering without closing the socket (here SIGSTOP, as a cut network
    would): the listener's pings go unanswered, so it reconnects and then wakes the watchers."""
    monkeypatch.setattr(redis_store, "_PING_EVERY", 0.1)
    monkeypatch.setattr(redis_store, "_SILENT_LIMIT", 0.4)
    port = free_port()
    with redis_on(port) as server:
        async with opened(f"redis://127.0.0.1:{port}/0") as store, store.watch("resp_quiet") as watch:
            assert await watch.wait(0.3) is False  # idle, pinged and answered: nothing to say
            server.proc.send_signal(signal.SIGSTOP)
            try:
                await asyncio.sleep(1.0)
            finally:
                server.proc.send_signal(signal.SIGCONT)
            assert await watch.wait(10) is True
            heard: asyncio.Queue[str] = asyncio.Queue()
            store.on_cancel = heard.put_nowait
            await store.request_cancel("resp_quiet")
            async with asyncio.timeout(1):
                assert await heard.get() == "resp_quiet"


async def test_out_of_memory_is_unavailable_and_passes() -> None:
    port = free_port()
    errors: list[StoreUnavailable] = []
    with redis_on(port):
        url = f"redis://127.0.0.1:{port}/0"
        async with opened(url, errors=errors) as store:
            await store.put(record("resp_m", 1))
            admin = aioredis.Redis.from_url(url)
            try:
                await admin.config_set("maxmemory", "1")  # noeviction: every write is refused
                for call in (
                    store.put(record("resp_n")),
                    store.update_response(response("resp_m", COMPLETED)),
                    store.append_events("resp_m", [delta(0)]),
                    store.probe(),
                ):
                    with pytest.raises(StoreUnavailable) as caught:
                        await call
                    assert caught.value.why == "Redis is out of memory"
                assert len(errors) == 4
                assert await store.get("resp_m") is not None  # reads still work
                await admin.config_set("maxmemory", "0")
                await store.probe()
                await store.update_response(response("resp_m", COMPLETED))
            finally:
                await admin.aclose()


# --- keys ----------------------------------------------------------------------------------------


async def test_ttl_sets_an_expiry_on_every_key_of_a_response(url: str, raw: aioredis.Redis) -> None:
    ttl = 600.0
    async with opened(url, ttl=ttl) as store:
        r = record("resp_t", 2)
        await store.put(r)
        await store.append_events("resp_t", [delta(0), delta(1)])
        await store.update_response(response("resp_t", COMPLETED, created_at=r.response.created_at))
        own = {k for k in await keys(raw) if k.endswith(":resp_t")}
        assert len(own) == 4  # the response, its items, their positions, its events
        expected_ms = (r.response.created_at + ttl) * 1000 - time.time() * 1000
        for key in own:
            left = await raw.pttl(key)
            assert expected_ms - 5_000 < left <= expected_ms + 1_000, key
        # The shared indexes are not any one response's: they never expire as a whole.
        for index in ("rg:created", "rg:running"):
            assert await raw.pttl(index) in (-1, -2)


async def test_redis_itself_drops_expired_responses(url: str, raw: aioredis.Redis) -> None:
    async with opened(url, ttl=1.0) as store:
        old = record("resp_old", 1)
        old.response.created_at = int(time.time()) - 10  # past its ttl already
        await store.put(old)
        assert await store.get("resp_old") is None
        await store.put(record("resp_soon", 1))
        await store.append_events("resp_soon", [delta(0)])
        assert await store.get("resp_soon") is not None
        deadline = time.monotonic() + 5
        while await store.get("resp_soon") is not None:
            assert time.monotonic() < deadline, "Redis never expired the response"
            await asyncio.sleep(0.1)
        assert await store.read_events("resp_soon", -1) == []
        assert {k for k in await keys(raw) if "resp_" in k and not k.startswith("rg:created")} == set()
        # expire() deletes nothing more, but drops what the age index still remembers.
        assert await store.expire(time.time() + 10) == 0
        assert await keys(raw) == set()


async def test_delete_and_expire_leave_no_key(url: str, raw: aioredis.Redis) -> None:
    async with opened(url) as store:
        now = time.time()
        for rid in ("resp_a", "resp_b"):
            await store.put(record(rid, 3, owner="A", lease_until=now + 60))  # running: in rg:running
            await store.append_events(rid, [delta(0), delta(1)])
        assert len(await keys(raw)) == 10  # 4 per response and the two indexes
        assert await store.delete("resp_a") is True
        assert not {k for k in await keys(raw) if "resp_a" in k}
        assert await raw.zscore("rg:created", "resp_a") is None
        assert await store.expire(now + 10) == 1
        assert await keys(raw) == set()
        # Nothing written to a deleted response brings part of it back.
        await store.append_events("resp_a", [delta(2)])
        await store.update_response(response("resp_a", COMPLETED))
        await store.renew("A", ["resp_a"], now + 120)
        assert await keys(raw) == set()


async def test_replicas_claiming_at_once_never_share_a_response(url: str) -> None:
    async with opened(url) as a, opened(url) as b:
        now = time.time()
        ids = {f"resp_{i}" for i in range(40)}
        for rid in ids:
            await a.put(record(rid, owner="gone", lease_until=now - 1))
        got_a, got_b = await asyncio.gather(
            *(s.claim_expired(n, now, now + 30) for s, n in ((a, "A"), (b, "B")))
        )
        claimed_a, claimed_b = {c.response.id for c in got_a}, {c.response.id for c in got_b}
        assert claimed_a.isdisjoint(claimed_b) and claimed_a | claimed_b == ids
        for rid in ids:
            stored = await b.get(rid)
            assert stored is not None and stored.owner == ("A" if rid in claimed_a else "B")


async def test_event_with_a_sequence_number_seen_before_replaces_it(url: str) -> None:
    async with opened(url) as store:
        await store.put(record("resp_r"))
        await store.append_events("resp_r", [delta(0), delta(1)])
        again = delta(1)
        again.response_output_text_delta.delta = "replaced"
        await store.append_events("resp_r", [again])
        events = await store.read_events("resp_r", -1)
        assert [e.sequence_number for e in events] == [0, 1] and events[1] == again


# --- two gateway processes sharing one Redis -----------------------------------------------------


UPSTREAM_KEY = "sk-fake-upstream-0123456789abcdef"


def gateway_config(tmp: Path, url: str, name: str, api_base: str = "http://127.0.0.1:1/v1") -> Path:
    model_list = [
        {"model_name": "mock", "litellm_params": {"model": "openai/mock", "mock_response": "hi"}},
        {
            "model_name": "slow",
            "litellm_params": {"model": "openai/gpt-4.1", "api_base": api_base, "api_key": UPSTREAM_KEY},
        },
    ]
    config = {"model_list": model_list, "gateway_settings": {"store": {"type": "redis", "url": url}}}
    path = tmp / f"{name}.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


@contextlib.contextmanager
def replicas(
    tmp: Path, url: str, api_base: str = "http://127.0.0.1:1/v1"
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Two gateway processes on one Redis, a REST client for each."""
    with contextlib.ExitStack() as stack:
        clients = []
        for name in ("a", "b"):
            gw = GatewayProcess(gateway_config(tmp, url, name, api_base), cwd=tmp).start()
            stack.callback(gw.stop)
            clients.append(stack.enter_context(httpx.Client(base_url=gw.http_base, timeout=30)))
        yield clients[0], clients[1]


def test_replicas_see_each_others_responses(url: str, tmp_path: Path) -> None:
    with replicas(tmp_path, url) as (on_a, on_b):
        created = on_a.post("/v1/responses", json={"model": "mock", "input": "hello"})
        assert created.status_code == 200, created.text
        rid = created.json()["id"]
        seen = on_b.get(f"/v1/responses/{rid}")
        assert seen.status_code == 200 and seen.json() == created.json()
        items = on_b.get(f"/v1/responses/{rid}/input_items").json()
        assert [i["content"][0]["text"] for i in items["data"]] == ["hello"]
        assert on_b.delete(f"/v1/responses/{rid}").json()["deleted"] is True
        assert on_a.get(f"/v1/responses/{rid}").status_code == 404


def test_a_cancel_on_one_replica_stops_the_run_on_the_other(url: str, tmp_path: Path) -> None:
    # ~5 s of upstream events: the cancel comes long before the end.
    with (
        serve_openai(UPSTREAM_KEY, event_delay=0.3) as fake,
        replicas(tmp_path, url, fake.api_base) as (on_a, on_b),
    ):
        created = on_a.post("/v1/responses", json={"model": "slow", "input": "x", "background": True})
        assert created.status_code == 200, created.text
        rid = created.json()["id"]
        started = time.monotonic()
        cancelled = on_b.post(f"/v1/responses/{rid}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert time.monotonic() - started < 2  # the signal, not the lease running out
        assert on_a.get(f"/v1/responses/{rid}").json()["status"] == "cancelled"


def test_gateway_refuses_to_start_on_an_unreachable_redis(tmp_path: Path) -> None:
    port = free_port()
    config = gateway_config(tmp_path, f"redis://gw:hunter2@127.0.0.1:{port}/0", "gw")
    cmd = [*gateway_command(), "serve", "--config", str(config), "--host", "127.0.0.1"]
    started = time.monotonic()
    proc = subprocess.run(
        [*cmd, "--grpc-port", "0", "--http-port", "0"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert time.monotonic() - started < 20  # the interpreter's start-up is most of it
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "hunter2" not in proc.stdout + proc.stderr
    assert (
        f"cannot open the response store redis://gw:***@127.0.0.1:{port}/0: "
        "cannot connect to Redis (connection refused)"
    ) in proc.stderr
