"""`responses-gateway serve --workers 2`, a real supervisor and two real worker processes on one port
pair, over SQLite (one file shared by the workers) and PostgreSQL: calls land on both workers (the
`x-gateway-worker` header names the pid that answered), and what one worker started the other follows,
resumes and cancels; a virtual key's rpm holds across them; /metrics sums them; a killed worker is
replaced; SIGTERM drains both."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.support.process import GatewayProcess, clean_env
from tests.support.servers import Server, new_database

KEY = "sk-upstream-0123456789"
MASTER = "sk-gateway-master-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}
MODEL = "oa-model"
WORKER = "x-gateway-worker"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    upstream = FakeOpenAI(KEY, known_models=None)
    with upstream.serve():
        yield upstream


@pytest.fixture(autouse=True)
def _fresh(fake: FakeOpenAI) -> Iterator[None]:
    fake.reset()
    fake.event_delay = 0.0
    yield
    fake.event_delay = 0.0


def write_config(tmp: Path, fake: FakeOpenAI, store: dict[str, Any]) -> Path:
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": "openai/gpt-4.1",
                    "api_base": f"{fake.base_url}/v1",
                    "api_key": KEY,
                },
            }
        ],
        "general_settings": {"master_key": MASTER},
        "gateway_settings": {"store": {**store, "lease_seconds": 2}},
    }
    path = tmp / "gateway.json"
    path.write_text(json.dumps(config))
    return path


def start(tmp: Path, fake: FakeOpenAI, store: dict[str, Any], grace: float = 5) -> GatewayProcess:
    return GatewayProcess(
        write_config(tmp, fake, store), cwd=tmp, env=clean_env(), grace=grace, workers=2
    ).start(timeout=120)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gateway(
    request: pytest.FixtureRequest, fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp(f"workers-{request.param}")
    if request.param == "sqlite":
        store: dict[str, Any] = {"type": "sqlite", "path": str(tmp / "responses.db")}
    else:
        server: Server = request.getfixturevalue("postgres")
        store = {"type": "postgres", "url": new_database(server)}
    gw = start(tmp, fake, store)
    yield gw
    gw.stop()


def workers_of(gw: GatewayProcess) -> set[int]:
    pid = gw.process.pid
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def client_on(gw: GatewayProcess, pid: int, tries: int = 200) -> httpx.Client:
    """A client whose (kept-alive) connection the kernel gave to worker `pid`."""
    for _ in range(tries):
        client = httpx.Client(base_url=gw.http_base, headers=AUTH, timeout=30)
        if client.get("/healthz").headers.get(WORKER) == str(pid):
            return client
        client.close()
    raise AssertionError(f"no connection landed on worker {pid}")


def two_clients(gw: GatewayProcess) -> tuple[httpx.Client, httpx.Client, int, int]:
    a, b = sorted(workers_of(gw))
    return client_on(gw, a), client_on(gw, b), a, b


def sse(response: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line[6:])


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_connections_land_on_both_workers(gateway: GatewayProcess) -> None:
    pids = workers_of(gateway)
    assert len(pids) == 2
    seen: set[str] = set()
    for _ in range(40):
        with httpx.Client(base_url=gateway.http_base, headers=AUTH, timeout=30) as c:
            r = c.post("/v1/responses", json={"model": MODEL, "input": "hi"})
            assert r.status_code == 200, r.text
            seen.add(r.headers[WORKER])
        if len(seen) == 2:
            break
    assert seen == {str(p) for p in pids}


def test_background_followed_resumed_and_cancelled_from_the_other_worker(
    gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    on_a, on_b, _, _ = two_clients(gateway)
    fake.event_delay = 0.15  # about 2 s of events
    started = on_a.post("/v1/responses", json={"model": MODEL, "input": "hi", "background": True}).json()
    rid = started["id"]
    assert on_b.get(f"/v1/responses/{rid}").json()["status"] in ("queued", "in_progress")

    # Resume on B after the first two events, while A still runs it: the rest, live, in order.
    with on_b.stream("GET", f"/v1/responses/{rid}", params={"stream": "true", "starting_after": 1}) as r:
        assert r.status_code == 200
        numbers, kinds = [], []
        for event in sse(r):
            numbers.append(event["sequence_number"])
            kinds.append(event["type"])
    assert numbers == list(range(2, 2 + len(numbers))) and len(numbers) > 3, numbers
    assert kinds[-1] == "response.completed"
    done = on_b.get(f"/v1/responses/{rid}").json()
    assert done["status"] == "completed" and done == on_a.get(f"/v1/responses/{rid}").json()

    # A cancel on B of what A runs takes effect at once (the bus), not when a lease runs out.
    fake.event_delay = 1.0
    running = on_a.post("/v1/responses", json={"model": MODEL, "input": "hi", "background": True}).json()
    wait_for(
        lambda: on_a.get(f"/v1/responses/{running['id']}").json()["status"] == "in_progress", 10, "running"
    )
    t0 = time.monotonic()
    cancelled = on_b.post(f"/v1/responses/{running['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert time.monotonic() - t0 < 1.0
    assert on_a.get(f"/v1/responses/{running['id']}").json()["status"] == "cancelled"


def test_rpm_of_a_virtual_key_holds_across_workers(gateway: GatewayProcess) -> None:
    on_a, on_b, _, _ = two_clients(gateway)
    made = on_a.post("/key/generate", json={"rpm_limit": 4})
    assert made.status_code == 200, made.text
    key = {"authorization": f"Bearer {made.json()['key']}"}
    codes = []
    for i in range(8):
        client = (on_a, on_b)[i % 2]
        codes.append(
            client.post("/v1/responses", json={"model": MODEL, "input": "hi"}, headers=key).status_code
        )
    assert sorted(codes) == [200] * 4 + [429] * 4, codes
    assert codes[:4] == [200] * 4  # the first four, whichever worker took them


def _unary_total(client: httpx.Client) -> float:
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("responses_gateway_responses_total{") and 'mode="unary"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_show_the_sum_over_workers(gateway: GatewayProcess) -> None:
    on_a, on_b, _, _ = two_clients(gateway)
    before = _unary_total(on_a)
    assert before == _unary_total(on_b)
    for client, n in ((on_a, 3), (on_b, 2)):
        for _ in range(n):
            assert client.post("/v1/responses", json={"model": MODEL, "input": "hi"}).status_code == 200
    assert _unary_total(on_a) == _unary_total(on_b) == before + 5


def test_a_killed_worker_is_replaced(gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    on_a, on_b, a, b = two_clients(gateway)
    fake.event_delay = 0.5
    # A background response on B when it dies: A fails it once B's lease runs out.
    orphan = on_b.post("/v1/responses", json={"model": MODEL, "input": "hi", "background": True}).json()
    wait_for(
        lambda: on_b.get(f"/v1/responses/{orphan['id']}").json()["status"] == "in_progress", 10, "running"
    )
    os.kill(b, signal.SIGKILL)
    new = wait_for(lambda: (workers_of(gateway) - {a, b}) or None, 60, "a new worker")
    (replacement,) = new
    assert workers_of(gateway) == {a, replacement}
    c = client_on(gateway, replacement, tries=2000)
    assert c.post("/v1/responses", json={"model": MODEL, "input": "hi"}).status_code == 200
    failed = wait_for(
        lambda: (r := on_a.get(f"/v1/responses/{orphan['id']}").json())["status"] == "failed" and r,
        30,
        "reaped",
    )
    assert failed["error"]["code"] == "server_error"


def test_sigterm_drains_both_workers(tmp_path: Path, fake: FakeOpenAI) -> None:
    gw = start(tmp_path, fake, {"type": "sqlite", "path": str(tmp_path / "responses.db")}, grace=10)
    try:
        on_a, on_b, a, b = two_clients(gw)
        fake.event_delay = 0.2
        first = {a: threading.Event(), b: threading.Event()}
        ends: dict[int, str] = {}

        def stream(client: httpx.Client, pid: int) -> None:
            body = {"model": MODEL, "input": "hi", "stream": True}
            with client.stream("POST", "/v1/responses", json=body) as r:
                assert r.headers[WORKER] == str(pid)
                for event in sse(r):
                    first[pid].set()
                    ends[pid] = event["type"]

        threads = [threading.Thread(target=stream, args=(c, p)) for c, p in ((on_a, a), (on_b, b))]
        for t in threads:
            t.start()
        assert all(e.wait(20) for e in first.values())
        gw.terminate()
        for t in threads:
            t.join(30)
        assert ends == {a: "response.completed", b: "response.completed"}
        assert gw.process.wait(30) == 0
        assert not any(Path(f"/proc/{p}").exists() for p in (a, b))
    finally:
        gw.stop()
