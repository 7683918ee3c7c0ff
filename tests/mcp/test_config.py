"""The MCP parts of the config file: LiteLLM's mcp_servers section, gateway_settings.mcp and
litellm_params.mcp_execution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from responses_gateway.config import ConfigError, load_config


def write(tmp_path: Path, config: dict[str, object]) -> Path:
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(config))
    return path


def test_mcp_servers_are_read_with_their_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "mcp_servers": {
                "docs": {
                    "url": "http://docs.internal/mcp",
                    "auth_type": "bearer_token",
                    "authentication_token": "os.environ/DOCS_TOKEN",
                    "static_headers": {"X-Team": "a"},
                    "allowed_params": {"x": 1},
                }
            },
            "model_list": [
                {
                    "model_name": "m",
                    "litellm_params": {"model": "openai/gpt-x", "api_key": "k", "mcp_execution": "gateway"},
                }
            ],
            "gateway_settings": {
                "mcp": {"allowed_server_urls": ["https://*.example.com/*"], "max_rounds": 2}
            },
        },
    )
    loaded = load_config(path, environ={"DOCS_TOKEN": "t0k"})
    server = loaded.config.mcp_servers["docs"]
    assert server.all_headers() == {"X-Team": "a", "Authorization": "Bearer t0k"}
    assert "t0k" not in repr(server)
    assert "ignored: mcp_servers.docs.allowed_params" in loaded.warnings
    assert not any(w.startswith("ignored: mcp_servers (") for w in loaded.warnings)
    assert loaded.deployments[0].mcp_execution == "gateway"
    assert loaded.config.gateway_settings.mcp.max_rounds == 2


def test_an_unset_mcp_secret_stops_start_up(tmp_path: Path) -> None:
    path = write(
        tmp_path, {"mcp_servers": {"docs": {"url": "http://x/mcp", "headers": {"X-Key": "os.environ/NOPE"}}}}
    )
    with pytest.raises(ConfigError, match="NOPE"):
        load_config(path, environ={})


def test_stdio_servers_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, {"mcp_servers": {"local": {"url": "x", "transport": "stdio"}}})
    with pytest.raises(ConfigError, match="transport"):
        load_config(path, environ={})
