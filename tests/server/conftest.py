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
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from responses_gateway.v1 import models_pb2_grpc, responses_service_pb2_grpc
from tests.fakes.openai_upstream import FakeOpenAI, make_openai_app
from tests.fakes.server import serve_app
from tests.spec import spec_path
from tests.support.inprocess import InProcessGateway

REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = spec_path()
SPEC_URI = "urn:openai-responses-spec"
UPSTREAM_KEY = "sk-fake-upstream-0123456789abcdef"
MASTER_KEY = "sk-gateway-master-key-0123456789"
MOCK_TEXT = "Hello from the end-to-end mock model."
SMALL_BODY_LIMIT = 4096
MODEL = "gpt-4.1"
_SERVING = re.compile(r"serving gRPC on (\S+):(\d+), REST on http://(\S+):(\d+)/v1")
# Provider keys a developer may have exported: the gateway under test must never see them.
_KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GATEWAY_MASTER_KEY")


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
    settings_extra: dict[str, Any] | None = None,
) -> Path:
    settings: dict[str, Any] = {
        "store": {"type": "sqlite", "path": str(store_path)},
        **(settings_extra or {}),
    }
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
                },
            },
            {"model_name": "mock", "litellm_params": {"model": "openai/mock", "mock_response": MOCK_TEXT}},
        ],
        "environment_variables": {"E2E_FAKE_OPENAI_KEY": UPSTREAM_KEY},
        "gateway_settings": settings,
    }
    if master_key is not None:
        config["general_settings"] = {"master_key": master_key}
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


# --------------------------------------------------------------------------------------- subprocess
def gateway_command() -> list[str]:
    exe = REPO / ".venv" / "bin" / "responses-gateway"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "responses_gateway.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _KEY_VARS}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "server"), str(REPO / "clients" / "python" / "src"), str(REPO)]
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class GatewayProcess:
    """`responses-gateway serve` on loopback; ports are picked by the OS (0) and read from its output."""

    def __init__(
        self, config: Path, *, cwd: Path, env: dict[str, str] | None = None, grace: float = 10
    ) -> None:
        self.config, self.cwd, self.grace = config, cwd, grace
        self.env = env if env is not None else clean_env()
        self.lines: list[str] = []
        self.grpc_port = self.http_port = 0
        self.proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def start(self, timeout: float = 60) -> GatewayProcess:
        cmd = [
            *gateway_command(),
            "serve",
            "--config",
            str(self.config),
            "--host",
            "127.0.0.1",
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--grace",
            str(self.grace),
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the gateway did not start (rc={self.proc.returncode}):\n{self.log}")
        wait_serving(self.grpc_target, max(1.0, deadline - time.monotonic()))
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if (m := _SERVING.search(line)) and not self._ready.is_set():
                self.grpc_port, self.http_port = int(m.group(2)), int(m.group(4))
                self._ready.set()

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.terminate()
        try:
            self.proc.wait(self.grace + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def wait_serving(target: str, timeout: float, service: str = "") -> None:
    """Block until the gRPC health check of `target` answers SERVING."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as e:
                last = e
            time.sleep(0.05)
    raise RuntimeError(f"{target} never reported SERVING ({last})")


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

    def spawn(grace: float = 10) -> GatewayProcess:
        cfg = write_config(tmp_path / "gateway.yaml", upstream[0].api_base, tmp_path / "responses.db")
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
@dataclass
class Spec:
    registry: Registry
    validators: dict[str, Draft202012Validator] = field(default_factory=dict)

    def validator(self, name: str) -> Draft202012Validator:
        if name not in self.validators:
            schema = {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}
            self.validators[name] = Draft202012Validator(schema, registry=self.registry)
        return self.validators[name]

    def errors(self, name: str, instance: Any) -> list[str]:
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
            for e in self.validator(name).iter_errors(instance)
        ]

    def check(self, name: str, instance: Any) -> None:
        problems = self.errors(name, instance)
        assert not problems, f"{name} does not validate:\n" + "\n".join(problems[:10])


@pytest.fixture(scope="session")
def spec() -> Spec:
    contents = json.loads(SPEC_PATH.read_text())
    resource = Resource.from_contents(contents, default_specification=DRAFT202012)
    return Spec(Registry().with_resource(SPEC_URI, resource))


# --------------------------------------------------------------------------------------- SSE parsing
@dataclass
class Frame:
    raw: str
    event: str | None
    data_lines: list[str]

    @property
    def data(self) -> str:
        return "\n".join(self.data_lines)

    def json(self) -> Any:
        return json.loads(self.data)


def parse_frame(raw: str) -> Frame:
    event, data = None, []
    for line in raw.split("\n"):
        if line.startswith("event: "):
            assert event is None, f"two event lines in {raw!r}"
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
        else:
            raise AssertionError(f"unexpected line {line!r} in frame {raw!r}")
    return Frame(raw, event, data)


def iter_frames(response: httpx.Response) -> Iterator[Frame]:
    """SSE frames as they arrive (a frame ends at a blank line)."""
    buffer = ""
    for text in response.iter_text():
        buffer += text
        while "\n\n" in buffer:
            raw, buffer = buffer.split("\n\n", 1)
            yield parse_frame(raw)
    assert buffer == "", f"trailing bytes after the last frame: {buffer!r}"
