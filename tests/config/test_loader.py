"""Loading the YAML config: LiteLLM compatibility, secrets, errors that name the file and the key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from responses_gateway.config import AdapterKind, ConfigError, LoadedConfig, ProviderKind, load_config

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parents[2]


def write(tmp_path: Path, text: str, name: str = "gateway.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> LoadedConfig:
    return load_config(write(tmp_path, text), environ={} if env is None else env)


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, env)
    return str(info.value)


BASIC = """
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
  - model_name: claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_key: os.environ/ANTHROPIC_API_KEY
      timeout: 30
      extra_headers: {"anthropic-beta": "x"}
    model_info: {id: claude-main}
"""


def test_valid_litellm_style_file_loads(tmp_path: Path) -> None:
    cfg = load(tmp_path, BASIC, {"OPENAI_API_KEY": "sk-o", "ANTHROPIC_API_KEY": "sk-a"})
    gpt, claude = cfg.deployments
    assert gpt.provider is ProviderKind.OPENAI and gpt.adapter is AdapterKind.RESPONSES
    assert gpt.upstream_model == "gpt-4o"
    assert gpt.api_base == "https://api.openai.com/v1" and gpt.api_key == "sk-o" and gpt.enabled
    assert claude.provider is ProviderKind.ANTHROPIC and claude.api_base == "https://api.anthropic.com"
    assert claude.timeout == 30 and claude.headers == {"anthropic-beta": "x"}
    assert claude.deployment_id == "claude-main"
    assert cfg.warnings == () and not cfg.auth_enabled
    assert cfg.model_names() == ["gpt-4o", "claude"]


def test_api_key_is_not_in_repr(tmp_path: Path) -> None:
    cfg = load(tmp_path, BASIC, {"OPENAI_API_KEY": "sk-secret-o", "ANTHROPIC_API_KEY": "sk-secret-a"})
    assert "sk-secret" not in repr(cfg.deployments) and "sk-secret" not in repr(cfg.config)


def test_os_environ_resolves_anywhere_in_litellm_params(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        """
        model_list:
          - model_name: az
            litellm_params:
              model: azure/my-deployment
              api_base: os.environ/MY_AZURE_BASE
              api_key: os.environ/MY_AZURE_KEY
              api_version: os.environ/MY_AZURE_VERSION
              timeout: os.environ/MY_TIMEOUT
              headers: {X-Team: os.environ/TEAM}
        general_settings:
          master_key: os.environ/MASTER
        """,
        {
            "MY_AZURE_BASE": "https://r.openai.azure.com/",
            "MY_AZURE_KEY": "k",
            "MY_TIMEOUT": "12.5",
            "MY_AZURE_VERSION": "2025-04-01-preview",
            "TEAM": "blue",
            "MASTER": "sk-master",
        },
    )
    (az,) = cfg.deployments
    assert az.enabled and az.api_base == "https://r.openai.azure.com" and az.api_key == "k"
    assert az.api_version == "2025-04-01-preview" and az.timeout == 12.5 and az.headers == {"X-Team": "blue"}
    assert az.auth.value == "api-key"
    assert cfg.master_key == "sk-master" and cfg.auth_enabled


def test_missing_env_disables_deployment_with_reason(tmp_path: Path) -> None:
    cfg = load(tmp_path, BASIC, {"ANTHROPIC_API_KEY": "sk-a"})
    gpt, claude = cfg.deployments
    assert not gpt.enabled and gpt.disabled_reason == "set OPENAI_API_KEY" and gpt.api_key is None
    assert claude.enabled
    assert cfg.model_names() == ["claude"]
    assert "gpt-4o -> openai/gpt-4o: disabled: set OPENAI_API_KEY" in cfg.status_lines()


def test_provider_env_var_used_when_no_api_key_given(tmp_path: Path) -> None:
    text = """
        model_list:
          - model_name: g
            litellm_params: {model: gemini/gemini-2.5-flash}
        """
    (g,) = load(tmp_path, text, {"GOOGLE_API_KEY": "gk"}).deployments
    assert g.enabled and g.api_key == "gk"
    assert g.api_base == "https://generativelanguage.googleapis.com/v1beta"
    (g,) = load(tmp_path, text, {}).deployments
    assert g.disabled_reason == "set GEMINI_API_KEY (or GOOGLE_API_KEY)"


def test_environment_variables_are_set_before_references_resolve(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    cfg = load(
        tmp_path,
        """
        environment_variables:
          OPENAI_API_KEY: sk-from-file
          RETRIES: 3
        model_list:
          - model_name: m
            litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY}
        """,
        env,
    )
    assert env == {"OPENAI_API_KEY": "sk-from-file", "RETRIES": "3"}
    assert cfg.deployments[0].api_key == "sk-from-file"


def test_unset_master_key_reference_refuses_to_start(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "general_settings: {master_key: os.environ/GATEWAY_KEY}\n")
    assert "gateway.yaml: general_settings.master_key: os.environ/GATEWAY_KEY is not set" in msg


def test_unknown_top_level_key_names_file_and_key(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "model_lists: []\n")
    assert msg.startswith(str(tmp_path / "gateway.yaml") + ": model_lists: unknown top-level key")
    assert "did you mean 'model_list'?" in msg


def test_unknown_key_in_our_own_sections_is_an_error(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "gateway_settings: {grpc_prot: 1}\n")
    assert "gateway.yaml: gateway_settings.grpc_prot: unknown key" in msg
    msg = error_of(tmp_path, "model_list: [{model_name: a, litellm_param: {model: openai/x}}]\n")
    assert "model_list[0].litellm_param: unknown key" in msg
    assert "model_list[0].litellm_params: required key is missing" in msg


def test_type_error_names_the_path(tmp_path: Path) -> None:
    msg = error_of(
        tmp_path,
        """
        model_list:
          - model_name: a
            litellm_params: {model: openai/a}
          - model_name: b
            litellm_params: {model: openai/b, timeout: soon}
        """,
    )
    assert msg == (
        f"{tmp_path / 'gateway.yaml'}: model_list[1].litellm_params.timeout: "
        "Input should be a valid number, unable to parse string as a number"
    )


def test_every_problem_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "gateway_settings: {http_port: 0, store: {type: postgres}}\n")
    assert len(info.value.problems) == 2
    assert any("gateway_settings.store: store type 'postgres' needs a url" in p for p in info.value.problems)


def test_yaml_syntax_error_has_line_number(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "model_list:\n  - model_name: a\n    litellm_params: [unclosed\n")
    assert msg.startswith(f"{tmp_path / 'gateway.yaml'}:4:")
    assert "YAML syntax error" in msg


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "model_list: []\nrouter_settings: {}\nmodel_list: []\n")
    assert "gateway.yaml:3:1: YAML syntax error: duplicate key 'model_list'" in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_ignored_litellm_keys_are_warnings(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        """
        model_list:
          - model_name: a
            litellm_params: {model: openai/a, api_key: k}
          - model_name: b
            litellm_params: {model: openai/b, api_key: k}
          - model_name: c
            litellm_params: {model: openai/c, api_key: k, rpm: 10, max_parallel_requests: 2}
        litellm_settings: {set_verbose: true, drop_params: true}
        router_settings: {routing_strategy: cost-based-routing, redis_host: h}
        general_settings: {alerting: [slack]}
        guardrails: []
        """,
    )
    assert set(cfg.warnings) == {
        "ignored: litellm_params.max_parallel_requests in model_list[2]",
        "ignored: litellm_settings.set_verbose",
        "ignored: router_settings.redis_host",
        "ignored: general_settings.alerting",
        "ignored: guardrails (LiteLLM section this gateway does not use)",
        "router_settings.routing_strategy: 'cost-based-routing' is not supported; using 'simple-shuffle'",
    }
    assert cfg.routing.strategy == "simple-shuffle" and cfg.deployments[0].drop_params


def test_settings_defaults_and_precedence(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        """
        model_list:
          - model_name: a
            litellm_params: {model: openai/a, api_key: k}
          - model_name: b
            litellm_params: {model: openai/b, api_key: k, timeout: 5, max_retries: 1, drop_params: false}
        litellm_settings: {num_retries: 4, request_timeout: 100, drop_params: true, fallbacks: [{a: [b]}]}
        router_settings: {num_retries: 2, fallbacks: [{b: a}], routing_strategy: round-robin}
        """,
    )
    a, b = cfg.deployments
    assert (a.timeout, a.stream_timeout, a.max_retries, a.drop_params) == (100, 100, 0, True)
    assert (b.timeout, b.stream_timeout, b.max_retries, b.drop_params) == (5, 5, 1, False)
    assert cfg.routing.num_retries == 2 and cfg.routing.strategy == "round-robin"
    assert cfg.routing.fallbacks == {"a": ("b",), "b": ("a",)}
    gs = cfg.config.gateway_settings
    assert (gs.host, gs.grpc_port, gs.http_port) == ("0.0.0.0", 50051, 8080)
    assert gs.store.type == "sqlite" and gs.store.path == "./responses-gateway.db"
    assert gs.max_request_body_bytes == 32 * 1024 * 1024


def test_include_appends_model_list(tmp_path: Path) -> None:
    more = "model_list: [{model_name: b, litellm_params: {model: openai/b, api_key: k}}]\n"
    write(tmp_path, more, "more.yaml")
    cfg = load(
        tmp_path,
        """
        include: [more.yaml]
        model_list: [{model_name: a, litellm_params: {model: openai/a, api_key: k}}]
        """,
    )
    assert [d.model_name for d in cfg.deployments] == ["a", "b"]


def test_litellm_docs_quick_start_example_loads() -> None:
    env = {"AZURE_API_KEY_EU": "eu-key"}
    cfg = load_config(DATA / "litellm_docs_example.yaml", environ=env)
    by_index = {d.index: d for d in cfg.deployments}
    assert by_index[0].enabled and by_index[0].provider is ProviderKind.AZURE
    assert by_index[0].api_base == "https://my-endpoint-europe-berri-992.openai.azure.com"
    assert by_index[2].disabled_reason == "set AZURE_API_KEY_CA"
    # Bedrock: no key needed (the AWS credential chain); the region from aws_region_name, else LiteLLM's
    assert by_index[1].enabled and by_index[1].provider is ProviderKind.BEDROCK
    assert by_index[1].api_base == "https://bedrock-runtime.us-west-2.amazonaws.com"
    assert by_index[3].api_base == "https://bedrock-runtime.us-east-1.amazonaws.com"
    assert by_index[4].enabled and by_index[4].upstream_model == "facebook/opt-125m"
    assert cfg.master_key == "sk-1234" and cfg.routing.strategy == "simple-shuffle"
    assert not [w for w in cfg.warnings if "aws_region_name" in w]
    assert "ignored: litellm_settings.success_callback" in cfg.warnings
    # the two gpt-4o entries form one group; only the EU one can serve
    assert [d.index for d in cfg.lookup("gpt-4o")] == [0, 2]


def test_litellm_docs_load_balancing_example_loads() -> None:
    cfg = load_config(DATA / "litellm_load_balancing_example.yaml", environ={})
    zephyr = cfg.lookup("zephyr-beta")
    # huggingface/ with an api_base: a TGI server of its own (the chat bridge, no key needed)
    assert [(d.enabled, d.api_base) for d in zephyr] == [
        (True, f"http://0.0.0.0:{p}/v1") for p in (8001, 8002, 8003)
    ]
    (gpt,) = cfg.lookup("gpt-4")  # via model_group_alias
    assert gpt.model_name == "gpt-4o" and gpt.provider is ProviderKind.OPENAI and gpt.enabled
    assert gpt.timeout == 30  # router_settings.timeout beats litellm_settings.request_timeout
    assert cfg.routing.num_retries == 2 and cfg.routing.fallbacks == {"zephyr-beta": ("gpt-4o",)}
    assert "router_settings.redis_password: os.environ/REDIS_PASSWORD is not set" in cfg.warnings


def test_repository_default_config_loads_without_keys() -> None:
    cfg = load_config(REPO / "config" / "gateway.yaml", environ={})
    assert cfg.warnings == ()
    assert cfg.model_names() == ["mock"]
    disabled = {d.model_name: d.disabled_reason for d in cfg.deployments if not d.enabled}
    assert disabled["gpt-4.1"] == "set OPENAI_API_KEY"
    assert disabled["claude-sonnet-4-5"] == "set ANTHROPIC_API_KEY"
    assert disabled["gemini-2.5-flash"] == "set GEMINI_API_KEY"
    assert not cfg.auth_enabled and cfg.config.gateway_settings.store.type == "sqlite"


def test_repository_default_config_with_keys() -> None:
    env = {"OPENAI_API_KEY": "o", "ANTHROPIC_API_KEY": "a", "GEMINI_API_KEY": "g"}
    cfg = load_config(REPO / "config" / "gateway.yaml", environ=env)
    assert all(d.enabled for d in cfg.deployments)
