"""Config reload on a running gateway (a real `responses-gateway serve` process): SIGHUP and
`POST /config/reload` swap the config in for new calls while a stream in flight finishes on the old one;
a bad file is refused with one clear line and the old config keeps serving; what needs a restart says so.

The slow upstream is the Anthropic fake holding its stream after a few events (`hold_after`); the new
config points at a second fake, so which upstream a call reached shows which config served it.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.support.process import GatewayProcess

KEY = "sk-upstream-0123456789abcdef"
MASTER = "sk-gateway-master-key-0123456789"
HELD_AFTER = 3  # upstream SSE events before the fake holds its stream (message_start, block start, ping)


def _config(
    path: Path, store: Path, models: list[dict[str, Any]], *, master: bool = True, **extra: Any
) -> Path:
    settings = {"store": {"type": "sqlite", "path": str(store)}, "native_lookup_timeout_seconds": 0.2}
    settings.update(extra.pop("gateway_settings", {}))
    doc: dict[str, Any] = {"model_list": models, "gateway_settings": settings, **extra}
    if master:
        doc["general_settings"] = {"master_key": MASTER}
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


def _claude(name: str, base: str) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {"model": "anthropic/scenario-text", "api_base": base, "api_key": KEY},
    }


def _mock(name: str, text: str = "canned") -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": "openai/mock", "mock_response": text}}


def _wait_for(gw: GatewayProcess, needle: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in gw.lines:
            if needle in line:
                return line
        time.sleep(0.02)
    raise AssertionError(f"no log line with {needle!r}:\n{gw.log}")


def _sighup(gw: GatewayProcess) -> None:
    gw.process.send_signal(signal.SIGHUP)


def _models(http: httpx.Client) -> list[str]:
    return [m["id"] for m in http.get("/v1/models", headers=_auth()).json()["data"]]


def _auth(key: str = MASTER) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _metric(http: httpx.Client, name: str, **labels: str) -> float:
    text = http.get("/metrics", headers=_auth()).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


@pytest.fixture
def fakes() -> Iterator[tuple[tuple[FakeAnthropic, str], tuple[FakeAnthropic, str]]]:
    old, new = FakeAnthropic(api_key=KEY), FakeAnthropic(api_key=KEY)
    with old.serve() as old_base, new.serve() as new_base:
        try:
            yield (old, old_base), (new, new_base)
        finally:
            old.release()
            new.release()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    """Started by the test (after it wrote the config); stopped here."""
    holder: list[GatewayProcess] = []
    yield holder  # type: ignore[misc]
    for gw in holder:
        gw.stop()


def _start(holder: Any, config: Path, tmp_path: Path) -> tuple[GatewayProcess, httpx.Client]:
    gw = GatewayProcess(config, cwd=tmp_path, grace=5)
    holder.append(gw)
    gw.start()
    return gw, httpx.Client(base_url=gw.http_base, timeout=30)


class Streamer(threading.Thread):
    """A streamed create read in a thread, its events kept as they arrive."""

    def __init__(self, base: str, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.base, self.body = base, body
        self.events: list[dict[str, Any]] = []
        self.status: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with (
                httpx.Client(base_url=self.base, timeout=60) as c,
                c.stream("POST", "/v1/responses", json={**self.body, "stream": True}, headers=_auth()) as r,
            ):
                self.status = r.status_code
                for line in r.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        self.events.append(json.loads(line[6:]))
        except BaseException as e:
            self.error = e

    def wait_events(self, n: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events) < n:
            assert time.monotonic() < deadline and self.is_alive(), (self.events, self.error)
            time.sleep(0.02)


# --- SIGHUP with a stream in flight ----------------------------------------------------------------
def test_sighup_swaps_the_config_while_a_stream_in_flight_completes(
    tmp_path: Path, fakes: Any, gateway: Any
) -> None:
    (old, old_base), (new, new_base) = fakes
    cfg = _config(tmp_path / "gateway.yaml", tmp_path / "r.db", [_claude("alpha", old_base)])
    gw, http = _start(gateway, cfg, tmp_path)
    old.hold_after(HELD_AFTER)

    streamer = Streamer(gw.http_base, {"model": "alpha", "input": "hi"})
    streamer.start()
    streamer.wait_events(3)  # created, in_progress, the message's item: the upstream holds now
    assert streamer.status == 200 and len(old.requests) == 1

    _config(cfg, tmp_path / "r.db", [_claude("beta", new_base), _mock("gamma")])
    _sighup(gw)
    line = _wait_for(gw, "config reloaded")
    assert "generation 2, 2 models" in line and "needs a restart" not in line

    # New calls see the new model list and reach the new config's upstream.
    assert _models(http) == ["beta", "gamma"]
    gone = http.post("/v1/responses", json={"model": "alpha", "input": "hi"}, headers=_auth())
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "model_not_found"
    beta = http.post("/v1/responses", json={"model": "beta", "input": "hi"}, headers=_auth())
    assert beta.status_code == 200, beta.text
    assert beta.json()["status"] == "completed" and len(new.requests) == 1 and len(old.requests) == 1

    # The held stream is still open on the old config: its generation is not retired under it.
    time.sleep(0.6)  # past the retiring generation's linger (native_lookup_timeout_seconds: 0.2)
    assert streamer.is_alive()
    assert "retired" not in gw.log
    assert _metric(http, "responses_gateway_config_retiring") == 1

    old.release()
    streamer.join(15)
    assert not streamer.is_alive() and streamer.error is None
    types = [e["type"] for e in streamer.events]
    assert types[-1] == "response.completed", types
    final = streamer.events[-1]["response"]
    text = "".join(e["delta"] for e in streamer.events if e["type"] == "response.output_text.delta")
    assert text and final["output"][0]["content"][0]["text"] == text
    assert [e["sequence_number"] for e in streamer.events] == list(range(len(types)))
    # Stored as it finished, and readable after the swap.
    stored = http.get(f"/v1/responses/{final['id']}", headers=_auth())
    assert stored.status_code == 200 and stored.json()["status"] == "completed"

    # Its last call over, the old generation closes its upstream connections.
    assert "generation 1 retired" in _wait_for(gw, "retired")
    assert _metric(http, "responses_gateway_config_retiring") == 0
    assert _metric(http, "responses_gateway_config_reloads_total", result="applied") == 1


# --- a bad file -------------------------------------------------------------------------------------
def test_sighup_with_a_bad_config_keeps_the_old_one_serving(tmp_path: Path, gateway: Any) -> None:
    store = tmp_path / "r.db"
    cfg = _config(tmp_path / "gateway.yaml", store, [_mock("alpha", "first")])
    gw, http = _start(gateway, cfg, tmp_path)

    bad = json.loads(cfg.read_text())
    bad["model_list"] = [_mock("beta")]
    bad["model_list"][0]["litellm_params"]["timeout"] = "soon"
    cfg.write_text(json.dumps(bad))
    _sighup(gw)
    line = _wait_for(gw, "refused")
    assert "config reload (SIGHUP) refused, the previous config keeps serving" in line
    assert "model_list[0].litellm_params.timeout" in line  # names the key and the problem
    assert line.count("\n") == 1  # one line

    assert _models(http) == ["alpha"]
    ok = http.post("/v1/responses", json={"model": "alpha", "input": "hi"}, headers=_auth())
    assert ok.status_code == 200 and ok.json()["output"][0]["content"][0]["text"] == "first"
    assert _metric(http, "responses_gateway_config_last_reload_ok") == 0
    assert _metric(http, "responses_gateway_config_reloads_total", result="refused") == 1
    assert http.get("/healthz").status_code == 200  # still serving, on the old config

    # An unset os.environ/ reference where it is fatal (the master key) is refused the same way.
    bad = json.loads(cfg.read_text())
    bad["general_settings"] = {"master_key": "os.environ/RELOAD_TEST_UNSET_KEY"}
    cfg.write_text(json.dumps(bad))
    _sighup(gw)
    deadline = time.monotonic() + 10
    while gw.log.count("refused") < 2:
        assert time.monotonic() < deadline, gw.log
        time.sleep(0.02)
    assert "os.environ/RELOAD_TEST_UNSET_KEY is not set" in gw.log

    # Fixed: the next reload applies, and the environment_variables section is read again.
    fixed = {
        "environment_variables": {"RELOAD_TEST_TEXT": "second"},
        "gateway_settings": {"store": {"type": "sqlite", "path": str(store)}},
        "general_settings": {"master_key": MASTER},
    }
    fixed["model_list"] = [_mock("alpha", "os.environ/RELOAD_TEST_TEXT")]
    cfg.write_text(json.dumps(fixed))
    _sighup(gw)
    _wait_for(gw, "config reloaded")
    again = http.post("/v1/responses", json={"model": "alpha", "input": "hi"}, headers=_auth())
    assert again.status_code == 200 and again.json()["output"][0]["content"][0]["text"] == "second"
    assert _metric(http, "responses_gateway_config_last_reload_ok") == 1


# --- the admin endpoint -----------------------------------------------------------------------------
def test_admin_reload_applies_refuses_and_names_what_needs_a_restart(tmp_path: Path, gateway: Any) -> None:
    store = tmp_path / "r.db"
    cfg = _config(tmp_path / "gateway.yaml", store, [_mock("alpha")])
    gw, http = _start(gateway, cfg, tmp_path)

    assert http.post("/config/reload").status_code == 401
    wrong = http.post("/config/reload", headers=_auth("sk-not-the-master-key"))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"

    # A new model and a port change: the model applies, the port is named as needing a restart.
    _config(cfg, store, [_mock("alpha"), _mock("beta", "from beta")], gateway_settings={"http_port": 9999})
    done = http.post("/config/reload", headers=_auth())
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["applied"] is True and body["generation"] == 2
    assert body["models"] == ["alpha", "beta"] and body["needs_restart"] == ["gateway_settings.http_port"]
    assert "needs a restart to take effect: gateway_settings.http_port" in body["message"]
    assert done.headers["x-request-id"].startswith("req_")
    assert _models(http) == ["alpha", "beta"]  # on the same port: the listener did not move
    beta = http.post("/v1/responses", json={"model": "beta", "input": "hi"}, headers=_auth())
    assert beta.json()["output"][0]["content"][0]["text"] == "from beta"

    cfg.write_text("model_list: [\n")  # not even YAML
    refused = http.post("/config/reload", headers=_auth())
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_config" and error["param"] == "config"
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("The new config was refused; the previous one keeps serving.")
    assert str(cfg) in error["message"]
    assert _models(http) == ["alpha", "beta"]
    _wait_for(gw, "config reload (admin API) refused")


def test_admin_reload_needs_a_master_key(tmp_path: Path, gateway: Any) -> None:
    cfg = _config(tmp_path / "gateway.yaml", tmp_path / "r.db", [_mock("alpha")], master=False)
    gw, http = _start(gateway, cfg, tmp_path)
    denied = http.post("/config/reload")
    assert denied.status_code == 403
    assert "master_key" in denied.json()["error"]["message"]
    # SIGHUP still reloads.
    _config(cfg, tmp_path / "r.db", [_mock("alpha"), _mock("beta")], master=False)
    _sighup(gw)
    _wait_for(gw, "config reloaded")
    assert _models(http) == ["alpha", "beta"]
