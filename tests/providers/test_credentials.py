"""LiteLLM's reusable credentials: the top-level `credential_list` and `litellm_params.
litellm_credential_name`. The deployment takes the keys it does not set from the named credential
(os.environ/ references included), and a request reaches the upstream with them."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from responses_gateway.config import ConfigError, LoadedConfig, load_config
from tests.fakes.chat_upstream import FakeChat
from tests.support.inprocess import InProcessGateway

CREDENTIALS = """
credential_list:
  - credential_name: azure-eu
    credential_values:
      api_key: os.environ/AZURE_EU_KEY
      api_base: https://eu.openai.azure.com
      api_version: "2025-04-01-preview"
    credential_info: {description: "EU resource", custom_llm_provider: azure}
  - credential_name: vertex-prod
    credential_values:
      vertex_project: prod-project
      vertex_location: europe-west4
      vertex_credentials: os.environ/VERTEX_KEY_JSON
model_list:
  - model_name: gpt-eu
    litellm_params: {model: azure/gpt-4o, litellm_credential_name: azure-eu}
  - model_name: gpt-eu-own-base
    litellm_params:
      model: azure/gpt-4o
      litellm_credential_name: azure-eu
      api_base: https://mine.openai.azure.com
  - model_name: gemini
    litellm_params: {model: vertex_ai/gemini-2.5-pro, litellm_credential_name: vertex-prod}
"""


def _load(tmp_path: Path, text: str, env: dict[str, str]) -> LoadedConfig:
    path = tmp_path / "gateway.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_config(path, environ=env)


def test_a_deployment_takes_its_values_from_the_named_credential(tmp_path: Path) -> None:
    cfg = _load(tmp_path, CREDENTIALS, {"AZURE_EU_KEY": "az-key", "VERTEX_KEY_JSON": '{"type": "x"}'})
    eu, own, gem = cfg.deployments
    assert (eu.enabled, eu.api_key, eu.api_base, eu.api_version) == (
        True,
        "az-key",
        "https://eu.openai.azure.com",
        "2025-04-01-preview",
    )
    assert own.api_base == "https://mine.openai.azure.com" and own.api_key == "az-key"  # its own key wins
    assert (gem.vertex_project, gem.vertex_location, gem.vertex_credentials) == (
        "prod-project",
        "europe-west4",
        '{"type": "x"}',
    )
    assert gem.api_base == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/prod-project/locations/europe-west4"
        "/publishers/google"
    )
    assert not any("credential_list" in w or "litellm_credential_name" in w for w in cfg.warnings)


def test_an_unset_variable_in_the_credential_disables_with_its_name(tmp_path: Path) -> None:
    cfg = _load(tmp_path, CREDENTIALS, {"VERTEX_KEY_JSON": "{}"})
    eu = cfg.deployments[0]
    assert not eu.enabled and eu.disabled_reason == "set AZURE_EU_KEY"  # not "set AZURE_API_KEY"


def test_an_unknown_credential_name_is_a_config_error(tmp_path: Path) -> None:
    text = CREDENTIALS.replace("litellm_credential_name: vertex-prod", "litellm_credential_name: vertex-prd")
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text, {})
    message = str(info.value)
    assert "model_list[2].litellm_params.litellm_credential_name: 'vertex-prd'" in message
    assert "azure-eu, vertex-prod" in message


def test_a_malformed_credential_list_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "credential_list:\n  - credential_values: {api_key: x}\n", {})
    assert "credential_list[0].credential_name: required key is missing" in str(info.value)


# ------------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeChat, httpx.Client]]:
    import os

    fake = FakeChat(api_key="sk-from-credential")
    tmp = tmp_path_factory.mktemp("credentials")
    with fake.serve() as base:
        os.environ["GW_TEST_CHAT_KEY"] = "sk-from-credential"
        cfg = {
            "credential_list": [
                {
                    "credential_name": "vllm",
                    "credential_values": {"api_key": "os.environ/GW_TEST_CHAT_KEY", "api_base": f"{base}/v1"},
                }
            ],
            "model_list": [
                {
                    "model_name": "chat",
                    "litellm_params": {
                        "model": "hosted_vllm/scenario-text",
                        "litellm_credential_name": "vllm",
                    },
                }
            ],
            "gateway_settings": {"store": {"type": "sqlite", "path": str(tmp / "r.db")}},
        }
        path = tmp / "gateway.json"
        path.write_text(json.dumps(cfg))
        gw = InProcessGateway(path, grace_seconds=1)
        try:
            with httpx.Client(base_url=f"{gw.http_base}/v1", timeout=30) as http:
                yield fake, http
        finally:
            gw.close()
            os.environ.pop("GW_TEST_CHAT_KEY", None)


def test_a_request_reaches_the_upstream_with_the_credentials_key_and_base(
    served: tuple[FakeChat, httpx.Client],
) -> None:
    fake, http = served
    r = http.post("/responses", json={"model": "chat", "input": "Say hello."})
    assert r.status_code == 200, r.text
    rec = fake.requests[-1]
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == "Bearer sk-from-credential"
