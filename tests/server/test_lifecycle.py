"""Process lifecycle: graceful shutdown on SIGTERM, and start-up from the repo's config with no keys."""

from __future__ import annotations

import re
import socket
import threading
from typing import Any

import grpc
import httpx
import openai
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from responses_gateway.contract.events import event_type
from responses_gateway.v1 import models_pb2, models_pb2_grpc, responses_service_pb2_grpc
from tests.server.conftest import MODEL, sdk
from tests.server.test_grpc import create_request, output_text
from tests.support.process import REPO, GatewayProcess, clean_env
from tests.support.sse import iter_frames


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def grpc_serving(target: str) -> bool:
    """A fresh channel: True only if the server took the call and said SERVING."""
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def test_sigterm_lets_in_flight_streams_finish(spawn_gateway, fake):
    gw = spawn_gateway(grace=20)
    fake.event_delay = 0.2  # 17 events: each stream takes ~3.4 s upstream

    # A gRPC stream in flight too, on its own thread.
    grpc_events: list[Any] = []
    grpc_started = threading.Event()
    grpc_error: list[BaseException] = []

    def grpc_stream() -> None:
        try:
            with grpc.insecure_channel(gw.grpc_target) as channel:
                stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
                for event in stub.StreamResponse(create_request(), timeout=30):
                    grpc_events.append(event)
                    grpc_started.set()
        except BaseException as e:
            grpc_error.append(e)
            grpc_started.set()

    thread = threading.Thread(target=grpc_stream)
    thread.start()
    assert grpc_started.wait(30)

    refused_during_drain = False
    grpc_refused_during_drain = False
    with (
        httpx.Client(base_url=gw.http_base, timeout=30) as http,
        http.stream("POST", "/v1/responses", json={"model": MODEL, "input": "hi", "stream": True}) as r,
    ):
        assert r.status_code == 200
        frames = iter_frames(r)
        first = next(frames)
        assert first.event == "response.created"
        gw.terminate()
        rest = []
        for frame in frames:
            rest.append(frame)
            if frame.data == "[DONE]":
                break
            if not refused_during_drain:
                refused_during_drain = not accepts_connections(gw.http_port)
            elif not grpc_refused_during_drain:
                grpc_refused_during_drain = not grpc_serving(gw.grpc_target)
    thread.join(30)

    # Both in-flight streams completed normally.
    assert rest[-1].data == "[DONE]"
    assert rest[-2].event == "response.completed"
    assert not grpc_error, grpc_error
    assert event_type(grpc_events[-1]) == "response.completed"
    assert output_text(grpc_events[-1].response_completed.response) == "Hello! How can I help you today?"
    # While they drained, nothing new was taken.
    assert refused_during_drain, "the REST port still accepted connections after SIGTERM"
    assert grpc_refused_during_drain, "the gRPC server still served new calls after SIGTERM"

    assert gw.proc is not None
    assert gw.proc.wait(timeout=gw.grace) == 0
    assert not accepts_connections(gw.http_port)
    assert not accepts_connections(gw.grpc_port)
    assert "shutting down" in gw.log
    assert "Traceback" not in gw.log, gw.log


def test_sigterm_when_idle_exits_promptly(spawn_gateway):
    gw = spawn_gateway(grace=20)
    gw.terminate()
    assert gw.proc is not None
    assert gw.proc.wait(timeout=gw.grace) == 0
    assert "Traceback" not in gw.log, gw.log


@pytest.fixture(scope="module")
def keyless(tmp_path_factory):
    """`make run`: the repo's config/gateway.yaml, no provider keys in the environment."""
    cwd = tmp_path_factory.mktemp("make-run")
    gw = GatewayProcess(REPO / "config" / "gateway.yaml", cwd=cwd, env=clean_env()).start()
    try:
        yield gw
    finally:
        gw.stop()


def test_keyless_start_names_the_env_vars(keyless):
    log = keyless.log
    for model, var in [
        ("gpt-4.1", "OPENAI_API_KEY"),
        ("o4-mini", "OPENAI_API_KEY"),
        ("claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
        ("gemini-2.5-flash", "GEMINI_API_KEY"),
    ]:
        assert re.search(rf"model {re.escape(model)} -> \S+: disabled: .*\b{var}\b", log), (
            f"{model}/{var}:\n{log}"
        )
    assert re.search(r"model mock -> openai/mock: enabled", log), log
    # The store of the repo's config is relative to the working directory, not the repo.
    assert (keyless.cwd / "responses-gateway.db").exists()


def test_keyless_mock_model_answers(keyless):
    with sdk(f"{keyless.http_base}/v1") as client:
        assert [m.id for m in client.models.list()] == ["mock"]
        r = client.responses.create(model="mock", input="hi")
        assert r.status == "completed"
        assert r.output_text == "Hello from the Responses Gateway mock model."
        events = list(client.responses.create(model="mock", input="hi", stream=True))
        assert events[-1].type == "response.completed"
        assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == r.output_text
        assert client.responses.retrieve(r.id).output_text == r.output_text

        with pytest.raises(openai.APIStatusError) as err:
            client.responses.create(model="gpt-4.1", input="hi")
        assert err.value.status_code == 503
        assert isinstance(err.value.body, dict) and "OPENAI_API_KEY" in err.value.body["message"]

    with grpc.insecure_channel(keyless.grpc_target) as channel:
        stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        reply = stub.CreateResponse(create_request(model="mock"), timeout=20)
        assert output_text(reply) == "Hello from the Responses Gateway mock model."
        models = models_pb2_grpc.ModelsServiceStub(channel).ListModels(
            models_pb2.ListModelsRequest(), timeout=10
        )
        assert [m.id for m in models.data] == ["mock"]
