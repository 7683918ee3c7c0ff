"""A shared store that is not there: at start-up (one clear line naming the URL, its password hidden),
and lost while serving (503 on the calls that need it, a stream in flight ends with a well-formed
failure, health says NOT_SERVING) and back again (the gateway recovers by itself, and nothing it had
acknowledged is lost). Real PostgreSQL and Redis servers, stopped and started under a real gateway.
Also: a single SQLite replica that crashed fails, at its next start, what it left running; and the ttl."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.support.process import GatewayProcess, clean_env, gateway_command
from tests.support.servers import Server, free_port, new_database, postgres_server, redis_server

KEY = "sk-upstream-0123456789"
MODEL = "claude-model"


@pytest.fixture(scope="module")
def anthropic() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic(api_key=KEY)
    with fake.serve() as base:
        yield fake, base
    fake.release()


@pytest.fixture(autouse=True)
def _reset(anthropic: tuple[FakeAnthropic, str]) -> Iterator[None]:
    anthropic[0].reset()
    yield
    anthropic[0].release()
    anthropic[0].reset()


def write_config(tmp: Path, base: str, store: dict[str, Any]) -> Path:
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {"model": "anthropic/scenario-text", "api_base": base, "api_key": KEY},
            }
        ],
        "gateway_settings": {"store": {"probe_seconds": 0.2, **store}},
    }
    path = tmp / "gateway.json"
    path.write_text(json.dumps(config))
    return path


def client(gw: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.http_base}/v1", api_key="unused", max_retries=0, timeout=30)


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("postgres", "postgresql://gw:s3cret-pw@127.0.0.1:{port}/gateway"),
        ("redis", "redis://:s3cret-pw@127.0.0.1:{port}/0"),
    ],
)
def test_unreachable_at_start_up(
    kind: str, url: str, tmp_path: Path, anthropic: tuple[FakeAnthropic, str]
) -> None:
    port = free_port()  # nothing listens there
    config = write_config(tmp_path, anthropic[1], {"type": kind, "url": url.format(port=port)})
    cmd = [*gateway_command(), "serve", "--config", str(config), "--host", "127.0.0.1"]
    cmd += ["--grpc-port", "0", "--http-port", "0", "--log-level", "warning"]
    proc = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "cannot open the response store" in lines[0]
    assert f"127.0.0.1:{port}" in lines[0] and "***" in lines[0]
    assert "s3cret-pw" not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


@contextlib.contextmanager
def own_server(kind: str) -> Iterator[Server]:
    with postgres_server() if kind == "postgres" else redis_server() as server:
        yield server


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_lost_while_serving_and_back(kind: str, tmp_path: Path, anthropic: tuple[FakeAnthropic, str]) -> None:
    fake, base = anthropic
    with own_server(kind) as server:
        config = write_config(tmp_path, base, {"type": kind, "url": new_database(server)})
        gw = GatewayProcess(config, cwd=tmp_path, env=clean_env(), grace=1).start()
        try:
            c = client(gw)
            kept = c.responses.create(model=MODEL, input="Remember this.")
            assert kept.status == "completed"

            # A stream in flight when the store goes: it ends with a well-formed response.failed.
            fake.hold_after(3)
            events: list[dict[str, Any]] = []
            with httpx.stream(
                "POST",
                f"{gw.http_base}/v1/responses",
                json={"model": MODEL, "input": "Hello.", "stream": True},
                timeout=30,
            ) as r:
                lines = r.iter_lines()
                for line in lines:
                    if line.startswith("data: "):
                        events.append(json.loads(line[6:]))
                        break
                server.stop()
                fake.release()
                for line in lines:
                    if line.startswith("data: {"):
                        events.append(json.loads(line[6:]))
            assert events[-1]["type"] == "response.failed", (events[-1], gw.log[-3000:])
            assert events[-1]["response"]["error"]["code"] == "store_unavailable"

            # While it is gone: 503 store_unavailable, health NOT_SERVING.
            with pytest.raises(openai.InternalServerError) as refused:
                c.responses.retrieve(kept.id)
            assert refused.value.status_code == 503
            assert refused.value.code == "store_unavailable"
            assert httpx.get(f"{gw.http_base}/healthz").status_code == 503

            server.start()
            deadline = time.monotonic() + 20
            while httpx.get(f"{gw.http_base}/healthz").status_code != 200:
                assert time.monotonic() < deadline, "the gateway did not recover"
                time.sleep(0.1)
            assert c.responses.retrieve(kept.id).output_text == kept.output_text  # nothing acknowledged lost
            assert (
                c.responses.create(model=MODEL, input="Again.", previous_response_id=kept.id).status
                == "completed"
            )
        finally:
            fake.release()
            gw.stop()


def test_single_sqlite_replica_fails_what_its_crash_left(
    tmp_path: Path, anthropic: tuple[FakeAnthropic, str]
) -> None:
    fake, base = anthropic
    config = write_config(tmp_path, base, {"type": "sqlite", "path": str(tmp_path / "responses.db")})
    gw = GatewayProcess(config, cwd=tmp_path, env=clean_env(), grace=1).start()
    fake.hold_after(2)
    try:
        started = client(gw).responses.create(model=MODEL, input="Write a long story.", background=True)
        assert client(gw).responses.retrieve(started.id).status in ("queued", "in_progress")
        gw.process.send_signal(signal.SIGKILL)
        gw.process.wait(10)
    finally:
        fake.release()
        gw.stop()
    again = GatewayProcess(config, cwd=tmp_path, env=clean_env(), grace=1).start()
    try:
        got = client(again).responses.retrieve(started.id)
        assert got.status == "failed"
        assert got.error is not None and got.error.code == "server_error" and "stopped" in got.error.message
        events = list(client(again).responses.retrieve(started.id, stream=True, starting_after=-1))
        assert events[-1].type == "response.failed"
    finally:
        again.stop()


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_ttl_expires_old_responses(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, anthropic: tuple[FakeAnthropic, str]
) -> None:
    store: dict[str, Any] = {"type": kind, "ttl": 1, "lease_seconds": 0.4}
    if kind == "sqlite":
        store["path"] = str(tmp_path / "responses.db")
    else:
        store["url"] = new_database(request.getfixturevalue(kind))
    config = write_config(tmp_path, anthropic[1], store)
    gw = GatewayProcess(config, cwd=tmp_path, env=clean_env(), grace=1).start()
    with contextlib.ExitStack() as stack:
        stack.callback(gw.stop)
        c = client(gw)
        made = c.responses.create(model=MODEL, input="Soon gone.")
        assert c.responses.retrieve(made.id).id == made.id
        deadline = time.monotonic() + 10
        while True:
            try:
                c.responses.retrieve(made.id)
            except openai.NotFoundError:
                break
            assert time.monotonic() < deadline, "the response outlived its ttl"
            time.sleep(0.2)
