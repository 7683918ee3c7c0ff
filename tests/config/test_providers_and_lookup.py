"""Provider table, model-string parsing, deployment resolution and model lookup."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from responses_gateway.config import (
    PROVIDERS,
    AdapterKind,
    AuthStyle,
    Deployment,
    LoadedConfig,
    ProviderKind,
    load_config,
    parse_model,
    resolve_deployment,
)


def dep(model: str, **params: object) -> Deployment:
    return Deployment.model_validate({"model_name": "m", "litellm_params": {"model": model, **params}})


def test_every_provider_has_a_spec() -> None:
    assert set(PROVIDERS) == set(ProviderKind)


@pytest.mark.parametrize(
    ("model", "provider", "upstream", "forced"),
    [
        ("openai/gpt-4o", ProviderKind.OPENAI, "gpt-4o", None),
        ("openai/chat_completions/gpt-4o", ProviderKind.OPENAI, "gpt-4o", AdapterKind.CHAT_COMPLETIONS),
        ("openai/responses/my-model", ProviderKind.OPENAI, "my-model", AdapterKind.RESPONSES),
        ("openrouter/meta-llama/llama-3-70b", ProviderKind.OPENROUTER, "meta-llama/llama-3-70b", None),
        ("ollama/llama3", ProviderKind.OLLAMA_CHAT, "llama3", None),
        ("gpt-4o", ProviderKind.OPENAI, "gpt-4o", None),
        ("claude-3-haiku-20240307", ProviderKind.ANTHROPIC, "claude-3-haiku-20240307", None),
        ("bedrock/anthropic.claude", ProviderKind.BEDROCK, "anthropic.claude", None),
        ("bedrock/converse/us.anthropic.claude", ProviderKind.BEDROCK, "us.anthropic.claude", None),
        ("mystery-model", None, "mystery-model", None),
    ],
)
def test_parse_model(
    model: str, provider: ProviderKind | None, upstream: str, forced: AdapterKind | None
) -> None:
    parsed = parse_model(model)
    assert (parsed.provider, parsed.upstream_model, parsed.force_adapter) == (provider, upstream, forced)


def test_custom_llm_provider_supplies_the_prefix() -> None:
    parsed = parse_model("llama3", custom_llm_provider="hosted_vllm")
    assert (parsed.provider, parsed.upstream_model) == (ProviderKind.HOSTED_VLLM, "llama3")


@pytest.mark.parametrize(
    ("model", "base", "env_key"),
    [
        ("groq/llama", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
        ("mistral/m", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
        ("together_ai/m", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        ("deepseek/deepseek-chat", "https://api.deepseek.com", "DEEPSEEK_API_KEY"),
        ("xai/grok-4", "https://api.x.ai/v1", "XAI_API_KEY"),
        ("openrouter/x/y", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
        ("fireworks_ai/m", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
        ("perplexity/sonar", "https://api.perplexity.ai", "PERPLEXITYAI_API_KEY"),
    ],
)
def test_chat_bridge_providers(model: str, base: str, env_key: str) -> None:
    r = resolve_deployment(dep(model), env={env_key: "k"})
    assert r.enabled and r.adapter is AdapterKind.CHAT_COMPLETIONS and r.auth is AuthStyle.BEARER
    assert (r.api_base, r.api_key) == (base, "k")
    assert resolve_deployment(dep(model), env={}).disabled_reason.startswith(f"set {env_key}")  # type: ignore[union-attr]


def test_openai_chat_bridge_switch_and_base_env() -> None:
    r = resolve_deployment(
        dep("openai/m", use_chat_completions_api=True),
        env={"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1/"},
    )
    assert r.adapter is AdapterKind.CHAT_COMPLETIONS and r.api_base == "http://127.0.0.1:9/v1"


def test_keyless_local_servers() -> None:
    vllm = resolve_deployment(dep("hosted_vllm/qwen"), env={"HOSTED_VLLM_API_BASE": "http://gpu:8000/v1"})
    assert vllm.enabled and vllm.api_key is None and not vllm.key_required
    assert resolve_deployment(dep("hosted_vllm/qwen"), env={}).disabled_reason == (
        "set HOSTED_VLLM_API_BASE (or litellm_params.api_base)"
    )
    # an unset optional key reference is simply no key
    vllm = resolve_deployment(
        dep("hosted_vllm/q", api_base="http://x/v1"), env={}, missing_env={"api_key": ("VLLM_KEY",)}
    )
    assert vllm.enabled
    ollama = resolve_deployment(dep("ollama_chat/llama3"), env={})
    assert ollama.enabled and ollama.api_base == "http://localhost:11434/v1"
    ollama = resolve_deployment(dep("ollama_chat/llama3", api_base="http://box:11434/v1"), env={})
    assert ollama.api_base == "http://box:11434/v1"


def test_azure_needs_a_base() -> None:
    r = resolve_deployment(dep("azure/gpt-4o"), env={"AZURE_API_KEY": "k"})
    assert r.disabled_reason == "set AZURE_API_BASE (or litellm_params.api_base)"
    r = resolve_deployment(
        dep("azure/gpt-4o"),
        env={
            "AZURE_API_KEY": "k",
            "AZURE_API_BASE": "https://r.x",
            "AZURE_API_VERSION": "2025-04-01-preview",
        },
    )
    assert r.enabled and r.auth is AuthStyle.AZURE_API_KEY and r.api_version == "2025-04-01-preview"


def test_vertex_ai() -> None:
    r = resolve_deployment(dep("vertex_ai/gemini-2.5-pro"), env={})
    assert r.disabled_reason == "set VERTEXAI_PROJECT (or litellm_params.vertex_project)"
    r = resolve_deployment(dep("vertex_ai/gemini-2.5-pro", vertex_project="p"), env={})
    assert r.enabled and r.adapter is AdapterKind.GEMINI and r.auth is AuthStyle.GOOGLE_OAUTH
    assert r.api_base == (
        "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google"
    )
    r = resolve_deployment(dep("vertex_ai/g"), env={"VERTEXAI_PROJECT": "p", "VERTEXAI_LOCATION": "global"})
    assert r.api_base == "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google"


def test_mock_response_needs_no_key() -> None:
    r = resolve_deployment(dep("anthropic/claude", mock_response="hi"), env={})
    assert r.enabled and r.mock_response == "hi" and not r.key_required


WILDCARDS = """
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o-2024-08-06, api_key: os.environ/OPENAI_API_KEY}
  - model_name: "openai/*"
    litellm_params: {model: "openai/*", api_key: os.environ/OPENAI_API_KEY}
  - model_name: "openai/*"
    litellm_params: {model: "azure/*", api_base: "https://r.x", api_key: az}
  - model_name: "team-*-fast"
    litellm_params: {model: "groq/*", api_key: gk}
  - model_name: "*"
    litellm_params: {model: "*"}
"""


@pytest.fixture
def wild(tmp_path: Path) -> LoadedConfig:
    path = tmp_path / "gateway.yaml"
    path.write_text(textwrap.dedent(WILDCARDS), encoding="utf-8")
    return load_config(path, environ={"OPENAI_API_KEY": "ok", "ANTHROPIC_API_KEY": "ak"})


def test_exact_match_wins(wild: LoadedConfig) -> None:
    (d,) = wild.lookup("gpt-4o")
    assert d.upstream_model == "gpt-4o-2024-08-06" and d.index == 0


def test_provider_wildcard_strips_the_prefix(wild: LoadedConfig) -> None:
    group = wild.lookup("openai/gpt-4.1")
    assert [(d.provider, d.upstream_model) for d in group] == [
        (ProviderKind.OPENAI, "gpt-4.1"),
        (ProviderKind.AZURE, "gpt-4.1"),
    ]
    assert all(d.model_name == "openai/gpt-4.1" and d.enabled for d in group)
    assert group[0].deployment_id == "openai/*#1:openai/gpt-4.1"


def test_more_specific_pattern_first(wild: LoadedConfig) -> None:
    (d,) = wild.lookup("team-llama-3-fast")
    assert (d.provider, d.upstream_model) == (ProviderKind.GROQ, "llama-3")


def test_bare_name_reaches_provider_wildcard(wild: LoadedConfig, tmp_path: Path) -> None:
    path = tmp_path / "only-openai.yaml"
    path.write_text('model_list: [{model_name: "openai/*", litellm_params: {model: "openai/*"}}]\n')
    cfg = load_config(path, environ={"OPENAI_API_KEY": "k"})
    (d,) = cfg.lookup("gpt-5")
    assert (d.provider, d.upstream_model) == (ProviderKind.OPENAI, "gpt-5")
    assert cfg.lookup("claude-x") == [] and cfg.lookup("mystery") == []


def test_catch_all_takes_provider_from_request(wild: LoadedConfig) -> None:
    (d,) = wild.lookup("anthropic/claude-haiku-4-5")
    assert (d.provider, d.upstream_model, d.api_key, d.enabled) == (
        ProviderKind.ANTHROPIC,
        "claude-haiku-4-5",
        "ak",
        True,
    )
    (d,) = wild.lookup("gemini/gemini-2.5-flash")
    assert d.disabled_reason == "set GEMINI_API_KEY (or GOOGLE_API_KEY)"
    (d,) = wild.lookup("bedrock/x")
    assert d.enabled and d.provider is ProviderKind.BEDROCK  # AWS credentials, not a key


def test_wildcards_are_not_listed_as_models(wild: LoadedConfig) -> None:
    assert wild.model_names() == ["gpt-4o"]
