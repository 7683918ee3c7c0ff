"""Two gateway processes sharing one store (real PostgreSQL and Redis servers), as two replicas behind a
Service: what one replica started, the other reads, follows, cancels, continues and deletes, through the
official `openai` SDK, for an OpenAI-native upstream and two translated ones (Anthropic, Gemini). And a
replica SIGKILLed while running a background response: the other fails it once its lease ends."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.support.process import GatewayProcess, clean_env
from tests.support.servers import Server, new_database
from tests.support.spec import BothSpecs

KEY = "sk-upstream-0123456789"
MASTER = "sk-gateway-master-0123456789"
PROVIDERS = ("openai", "anthropic", "gemini")
MODEL = {"openai": "oa-model", "anthropic": "claude-model", "gemini": "gem-model"}
LEASE = 2.0


@dataclass
class Fakes:
    openai: FakeOpenAI
    anthropic: FakeAnthropic
    gemini: FakeGemini
    bases: dict[str, str]

    def reset(self) -> None:
        self.openai.reset()
        self.anthropic.reset()
        self.gemini.reset()

    def slow(self, provider: str, seconds: float) -> None:
        """The upstream's stream takes about `seconds` in all."""
        fake = getattr(self, provider)
        fake.event_delay = seconds / {"openai": 10, "anthropic": 9, "gemini": 3}[provider]

    def hold(self, provider: str) -> None:
        """The upstream's stream stops after its first events, until the gateway hangs up."""
        if provider == "openai":
            self.openai.stall_after = 3
        else:
            getattr(self, provider).hold_after(2)

    def release(self) -> None:
        self.anthropic.release()
        self.gemini.release()

    def upstream_requests(self, provider: str) -> list[Any]:
        fake = getattr(self, provider)
        return fake.create_requests if provider == "openai" else fake.requests


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    oa, anth, gem = FakeOpenAI(KEY, known_models=None), FakeAnthropic(api_key=KEY), FakeGemini(api_key=KEY)
    with oa.serve() as oa_base, anth.serve() as anth_base, gem.serve() as gem_base:
        f = Fakes(oa, anth, gem, {"openai": oa_base, "anthropic": anth_base, "gemini": gem_base})
        yield f
        f.release()


def config(fakes: Fakes, store: dict[str, Any]) -> dict[str, Any]:
    def deployment(name: str, model: str, base: str) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {"model": model, "api_base": base, "api_key": KEY}}

    return {
        "model_list": [
            deployment(MODEL["openai"], "openai/gpt-4.1", f"{fakes.bases['openai']}/v1"),
            deployment(MODEL["anthropic"], "anthropic/scenario-text", fakes.bases["anthropic"]),
            deployment(MODEL["gemini"], "gemini/scenario-text", f"{fakes.bases['gemini']}/v1beta"),
        ],
        "general_settings": {"master_key": MASTER},
        "gateway_settings": {"store": {**store, "lease_seconds": LEASE, "stateless_background_seconds": 1}},
    }


@dataclass
class Replicas:
    a: GatewayProcess
    b: GatewayProcess
    store: dict[str, Any]

    def client(self, gw: GatewayProcess) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{gw.http_base}/v1", api_key=MASTER, max_retries=0, timeout=30)


def start_pair(fakes: Fakes, store: dict[str, Any], tmp: Path) -> Replicas:
    path = tmp / "gateway.json"
    path.write_text(json.dumps(config(fakes, store)))
    a = GatewayProcess(path, cwd=tmp, env=clean_env(), grace=1).start()
    try:
        b = GatewayProcess(path, cwd=tmp, env=clean_env(), grace=1).start()
    except BaseException:
        a.stop()
        raise
    return Replicas(a, b, store)


@pytest.fixture(scope="module", params=["postgres", "redis"])
def backend(request: pytest.FixtureRequest) -> Server:
    server: Server = request.getfixturevalue(request.param)
    return server


def store_of(server: Server) -> dict[str, Any]:
    kind = "redis" if server.url.startswith("redis") else "postgres"
    return {"type": kind, "url": new_database(server)}


@pytest.fixture(scope="module")
def replicas(backend: Server, fakes: Fakes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    pair = start_pair(fakes, store_of(backend), tmp_path_factory.mktemp("replicas"))
    try:
        yield pair
    finally:
        fakes.release()
        pair.a.stop()
        pair.b.stop()


@pytest.fixture(autouse=True)
def _fresh_fakes(fakes: Fakes) -> Iterator[None]:
    fakes.reset()
    yield
    fakes.release()
    fakes.reset()


@pytest.fixture(scope="module")
def spec() -> BothSpecs:
    return BothSpecs()


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_background_response_followed_from_the_other_replica(
    replicas: Replicas, fakes: Fakes, provider: str, spec: BothSpecs
) -> None:
    fakes.slow(provider, 2.0)
    on_a, on_b = replicas.client(replicas.a), replicas.client(replicas.b)
    started = on_a.responses.create(model=MODEL[provider], input="Say hello.", background=True)
    assert started.status in ("queued", "in_progress")

    seen = on_b.responses.retrieve(started.id)
    assert seen.id == started.id and seen.status in ("queued", "in_progress") and seen.background

    # Resume on B after the first events, while A still runs it: the rest, live, original numbers.
    first = _read_events(replicas.b, started.id, -1, until_seq=1)
    after = first[-1]["sequence_number"]
    followed = list(on_b.responses.retrieve(started.id, stream=True, starting_after=after))
    numbers = [e.sequence_number for e in followed]
    assert numbers == list(range(after + 1, after + 1 + len(numbers))), numbers
    assert followed[-1].type == "response.completed"
    for event in followed:
        spec.check_event(event.model_dump(mode="json", exclude_unset=True))

    done = on_b.responses.retrieve(started.id)
    assert done.status == "completed" and done.output_text
    got = httpx.get(
        f"{replicas.b.http_base}/v1/responses/{started.id}", headers={"authorization": f"Bearer {MASTER}"}
    )
    spec.check_response(got.json())
    assert on_a.responses.retrieve(started.id).output_text == done.output_text
    items = on_b.responses.input_items.list(started.id)
    assert [i.type for i in items.data] == ["message"]

    # A follow-up on B continues the conversation A ran; then a delete on B is a delete on A.
    before = len(fakes.upstream_requests(provider))
    follow_up = on_b.responses.create(model=MODEL[provider], input="Again.", previous_response_id=started.id)
    assert follow_up.status == "completed"
    sent = fakes.upstream_requests(provider)[before:]
    assert sent, "the follow-up reached the upstream"
    if provider != "openai":  # translated upstreams get the conversation replayed
        assert done.output_text in json.dumps(sent[-1].body)
    on_b.responses.delete(started.id)
    with pytest.raises(openai.NotFoundError):
        on_a.responses.retrieve(started.id)


def _read_events(gw: GatewayProcess, rid: str, after: int, until_seq: int) -> list[dict[str, Any]]:
    """The events logged so far, read with a stream that is closed once `until_seq` arrived."""
    out: list[dict[str, Any]] = []
    url = f"{gw.http_base}/v1/responses/{rid}?stream=true&starting_after={after}"
    with httpx.stream("GET", url, headers={"authorization": f"Bearer {MASTER}"}, timeout=30) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
                if out[-1]["sequence_number"] >= until_seq:
                    break
    return out


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cancel_on_the_other_replica(replicas: Replicas, fakes: Fakes, provider: str) -> None:
    fakes.hold(provider)
    on_a, on_b = replicas.client(replicas.a), replicas.client(replicas.b)
    started = on_a.responses.create(model=MODEL[provider], input="Write a long story.", background=True)
    t0 = time.monotonic()
    cancelled = on_b.responses.cancel(started.id)
    took = time.monotonic() - t0
    assert cancelled.status == "cancelled"
    assert took < 1.0, f"the cancel took {took:.2f} s to take effect on the replica running it"
    assert on_a.responses.retrieve(started.id).status == "cancelled"
    # Cancelling again is answered from the store, on either replica.
    assert on_a.responses.cancel(started.id).status == "cancelled"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_follow_up_sent_the_instant_a_stream_completed(
    replicas: Replicas, fakes: Fakes, provider: str
) -> None:
    on_a, on_b = replicas.client(replicas.a), replicas.client(replicas.b)
    with on_a.responses.create(model=MODEL[provider], input="Hello.", stream=True) as stream:
        for event in stream:
            if event.type == "response.completed":
                # Before reading anything more from A: B must see what A just reported.
                again = on_b.responses.create(
                    model=MODEL[provider], input="And now?", previous_response_id=event.response.id
                )
                assert again.status == "completed"
                assert again.previous_response_id == event.response.id
                got = on_b.responses.retrieve(event.response.id)
                assert got.status == "completed" and got.output_text == event.response.output_text


def test_store_false_leaves_nothing(replicas: Replicas) -> None:
    on_a, on_b = replicas.client(replicas.a), replicas.client(replicas.b)
    kept = on_a.responses.create(model=MODEL["anthropic"], input="Hello.", store=False)
    assert kept.status == "completed"
    for client in (on_a, on_b):
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(kept.id)


def test_background_store_false_is_polled_then_forgotten(replicas: Replicas, fakes: Fakes) -> None:
    fakes.slow("gemini", 1.0)
    on_a, on_b = replicas.client(replicas.a), replicas.client(replicas.b)
    started = on_a.responses.create(model=MODEL["gemini"], input="Hello.", background=True, store=False)
    assert on_b.responses.retrieve(started.id).status in ("queued", "in_progress")
    done = wait_for(
        lambda: (r := on_b.responses.retrieve(started.id)).status == "completed" and r, 10, "it to complete"
    )
    assert done.output_text and done.store is False
    # Kept a while for the poller (stateless_background_seconds: 1 here), then gone from every replica.
    wait_for(lambda: _gone(on_a, started.id) and _gone(on_b, started.id), 10, "it to be forgotten")


def _gone(client: openai.OpenAI, rid: str) -> bool:
    try:
        client.responses.retrieve(rid)
    except openai.NotFoundError:
        return True
    return False


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_sigkill_of_the_replica_running_a_response(
    backend: Server, fakes: Fakes, provider: str, tmp_path: Path
) -> None:
    pair = start_pair(fakes, store_of(backend), tmp_path)
    try:
        fakes.hold(provider)
        on_a, on_b = pair.client(pair.a), pair.client(pair.b)
        started = on_a.responses.create(model=MODEL[provider], input="Write a long story.", background=True)
        # A reader on B, following it, must be ended too.
        events: list[Any] = []
        reader = threading.Thread(
            target=lambda: events.extend(on_b.responses.retrieve(started.id, stream=True, starting_after=-1)),
            daemon=True,
        )
        reader.start()
        wait_for(lambda: events, 10, "the reader on B to get the first events")
        pair.a.process.send_signal(signal.SIGKILL)
        pair.a.process.wait(10)
        t0 = time.monotonic()
        failed = wait_for(
            lambda: (r := on_b.responses.retrieve(started.id)).status == "failed" and r, 30, "B to fail it"
        )
        assert time.monotonic() - t0 < 30
        assert failed.error is not None and failed.error.code == "server_error"
        assert "replica" in failed.error.message and "stopped" in failed.error.message
        reader.join(10)
        assert not reader.is_alive()
        assert events[-1].type == "response.failed"
        numbers = [e.sequence_number for e in events]
        assert numbers == list(range(len(numbers)))
    finally:
        fakes.release()
        pair.a.stop()
        pair.b.stop()
