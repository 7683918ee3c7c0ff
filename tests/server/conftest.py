"""Fixtures of the end-to-end tests: the fake OpenAI upstream, the gateway (a real `responses-gateway serve`
subprocess, or in-process where a test looks at the store), and clients over real sockets.

The fake is served through a small ASGI wrapper (`Observed`) that notes, per upstream request, how many
body chunks the fake sent and whether the gateway hung up before the fake finished its response: that is
how the tests see that streaming is real and that a cancelled call stops reading upstream, without
touching the fake itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest

from responses_gateway.v1 import models_pb2_grpc, responses_service_pb2_grpc
from tests.fakes.openai_upstream import FakeOpenAI, make_openai_app
from tests.fakes.server import serve_app
from tests.support.inprocess import InProcessGateway
from tests.support.process import GatewayProcess
from tests.support.spec import Spec

REPO = Path(__file__).resolve().parents[2]
UPSTREAM_KEY = "sk-fake-upstream-0123456789abcdef"
MASTER_KEY = "sk-gateway-master-key-0123456789"
MOCK_TEXT = "Hello from the end-to-end mock model."
SMALL_BODY_LIMIT = 4096
MODEL = "gpt-4.1"


# --------------------------------------------------------------------------------------- fake upstream
@dataclass
class Exchange:
    """One request the fake answered, as seen on the wire."""

    method: str
    path: str
    chunks_sent: int = 0  # http.response.body messages with content
    completed: bool = False  # the fake sent its last chunk (more_body false)
    client_disconnected: bool = False  # the gateway hung up before that
    chunks_at_disconnect: int | None = None


class Observed:
    """ASGI wrapper around the fake: records each exchange and watches for the client hanging up."""

    def __init__(self, app: FakeOpenAI) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ex = Exchange(scope["method"], scope["path"])
        self.exchanges.append(ex)
        watcher: asyncio.Task[None] | None = None

        async def watch() -> None:
            # Started once the response began, i.e. after the fake read the whole request body, so no
            # body message is taken from it. uvicorn answers `http.disconnect` when the peer closes.
            while (await receive())["type"] != "http.disconnect":
                pass
            if not ex.completed:
                ex.client_disconnected = True
                ex.chunks_at_disconnect = ex.chunks_sent

        async def observed_send(message: dict[str, Any]) -> None:
            nonlocal watcher
            if message["type"] == "http.response.start" and watcher is None:
                watcher = asyncio.ensure_future(watch())
            await send(message)
            if message["type"] == "http.response.body":
                if message.get("body"):
                    ex.chunks_sent += 1
                if not message.get("more_body", False):
                    ex.completed = True

        try:
            await self.app(scope, receive, observed_send)
        finally:
            # A hang-up mid-response was recorded when it happened (uvicorn wakes `receive` at once).
            if watcher is not None:
                watcher.cancel()

    def creates(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == "POST" and e.path == "/v1/responses"]


@pytest.fixture(scope="session")
def upstream() -> Iterator[tuple[FakeOpenAI, Observed]]:
    fake = make_openai_app(UPSTREAM_KEY)
    observed = Observed(fake)
    with serve_app(observed) as base_url:
        fake.base_url = base_url
        yield fake, observed


@pytest.fixture
def fake(upstream: tuple[FakeOpenAI, Observed]) -> Iterator[FakeOpenAI]:
    """The session's fake, reset for this test (no queue, no delay, scenario text)."""
    f, observed = upstream
    f.reset()
    f.scenario, f.event_delay = "text", 0.0
    observed.exchanges.clear()
    yield f
    f.reset()
    f.scenario, f.event_delay = "text", 0.0


@pytest.fixture
def wire(upstream: tuple[FakeOpenAI, Observed], fake: FakeOpenAI) -> Observed:
    return upstream[1]


# --------------------------------------------------------------------------------------- configs
def write_config(
    path: Path,
    api_base: str,
    store_path: Path,
    *,
    master_key: str | None = None,
    max_body: int | None = None,
    params: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    router: dict[str, Any] | None = None,
) -> Path:
    """`params` go into the upstream deployment's litellm_params, `settings` into gateway_settings,
    `router` into router_settings."""
    settings = {"store": {"type": "sqlite", "path": str(store_path)}, **(settings or {})}
    if max_body is not None:
        settings["max_request_body_bytes"] = max_body
    config: dict[str, Any] = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": f"openai/{MODEL}",
                    "api_base": api_base,
                    "api_key": "os.environ/E2E_FAKE_OPENAI_KEY",
                    **(params or {}),
                },
            },
            {"model_name": "mock", "litellm_params": {"model": "openai/mock", "mock_response": MOCK_TEXT}},
        ],
        "environment_variables": {"E2E_FAKE_OPENAI_KEY": UPSTREAM_KEY},
        "gateway_settings": settings,
    }
    if master_key is not None:
        config["general_settings"] = {"master_key": master_key}
    if router is not None:
        config["router_settings"] = router
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


# --------------------------------------------------------------------------------------- subprocess
def _spawn(tmp: Path, api_base: str, **config: Any) -> Iterator[GatewayProcess]:
    cfg = write_config(tmp / "gateway.yaml", api_base, tmp / "responses.db", **config)
    gw = GatewayProcess(cfg, cwd=tmp).start()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="session")
def gateway(
    upstream: tuple[FakeOpenAI, Observed], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """The gateway the tests share: no master key, default limits."""
    yield from _spawn(tmp_path_factory.mktemp("gateway"), upstream[0].api_base)


@pytest.fixture(scope="session")
def secured(
    upstream: tuple[FakeOpenAI, Observed], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """A gateway with `general_settings.master_key` and a small `max_request_body_bytes`."""
    yield from _spawn(
        tmp_path_factory.mktemp("secured"),
        upstream[0].api_base,
        master_key=MASTER_KEY,
        max_body=SMALL_BODY_LIMIT,
    )


@pytest.fixture
def spawn_gateway(
    upstream: tuple[FakeOpenAI, Observed], tmp_path: Path
) -> Iterator[Callable[..., GatewayProcess]]:
    """A gateway of the test's own (for tests that stop it)."""
    started: list[GatewayProcess] = []

    def spawn(grace: float = 10, **config: Any) -> GatewayProcess:
        cfg = write_config(
            tmp_path / "gateway.yaml", upstream[0].api_base, tmp_path / "responses.db", **config
        )
        gw = GatewayProcess(cfg, cwd=tmp_path, grace=grace).start()
        started.append(gw)
        return gw

    yield spawn
    for gw in started:
        gw.stop()


# --------------------------------------------------------------------------------------- in-process
@pytest.fixture(scope="module")
def inproc(
    upstream: tuple[FakeOpenAI, Observed], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessGateway]:
    tmp = tmp_path_factory.mktemp("inproc")
    gw = InProcessGateway(write_config(tmp / "gateway.yaml", upstream[0].api_base, tmp / "responses.db"))
    try:
        yield gw
    finally:
        gw.close()


# --------------------------------------------------------------------------------------- clients
def sdk(base_url: str, api_key: str = "sk-anything", **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=base_url,
        api_key=api_key,
        max_retries=0,
        timeout=30,
        _strict_response_validation=True,
        **kwargs,
    )


@pytest.fixture(scope="session")
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with sdk(f"{gateway.http_base}/v1") as c:
        yield c


@pytest.fixture(scope="session")
def http(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.http_base, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def channel(gateway: GatewayProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(gateway.grpc_target) as ch:
        yield ch


@pytest.fixture(scope="session")
def stub(channel: grpc.Channel) -> responses_service_pb2_grpc.ResponsesServiceStub:
    return responses_service_pb2_grpc.ResponsesServiceStub(channel)


@pytest.fixture(scope="session")
def models_stub(channel: grpc.Channel) -> models_pb2_grpc.ModelsServiceStub:
    return models_pb2_grpc.ModelsServiceStub(channel)


# --------------------------------------------------------------------------------------- the spec
@pytest.fixture(scope="session")
def spec() -> Spec:
    return Spec()
