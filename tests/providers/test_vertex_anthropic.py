"""Claude on Vertex AI (`vertex_ai/claude-...`): the Anthropic adapter under Vertex's URL
(`.../publishers/anthropic/models/{model}:streamRawPredict`), a Google Bearer token from a
service-account key file, and the body's `anthropic_version` with no `model`; plus the shared
scenario suite over it."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.providers import vertex_env
from tests.providers.conftest import Adapter
from tests.providers.test_errors import (  # noqa: F401  (the shared suite, run here over Claude on Vertex)
    test_mid_stream_disconnect,
    test_rate_limit_over_grpc,
    test_unary_disconnect_is_an_error_status,
    test_upstream_http_error,
)
from tests.providers.test_scenarios import (  # noqa: F401
    test_function_calling_loop,
    test_image_input,
    test_previous_response_id_replays_history,
    test_reasoning_round_trip,
    test_stream_well_formed,
    test_structured_output_parse,
    test_text_unary,
)
from tests.providers.vertex_env import LOCATION, PROJECT, VertexEnv

# The Vertex gateway's fixtures replace conftest's for this module.
env, http, client, stub = vertex_env.env, vertex_env.http, vertex_env.client, vertex_env.stub


@pytest.fixture
def adapter(env: VertexEnv) -> Adapter:
    return env.adapters["anthropic"]


def test_url_body_and_auth_are_vertexs(env: VertexEnv, client: openai.OpenAI) -> None:
    assert client.responses.create(model="vclaude-text", input="Say hello.").output_text
    (seen,) = env.front.seen
    assert (seen["project"], seen["location"], seen["publisher"]) == (PROJECT, LOCATION, "anthropic")
    assert (seen["model"], seen["method"]) == ("claude-scenario-text", "streamRawPredict")
    body = seen["body"]
    assert body["anthropic_version"] == "vertex-2023-10-16" and "model" not in body
    assert body["stream"] is True and body["messages"][0]["role"] == "user"
    headers = seen["headers"]
    token = headers["authorization"].removeprefix("Bearer ")
    assert token in env.oauth.issued and env.oauth.valid(token)  # minted for the key file's account
    assert "x-api-key" not in headers and "anthropic-version" not in headers


def test_count_tokens_uses_vertexs_count_endpoint(env: VertexEnv, http: httpx.Client) -> None:
    r = http.post("/responses/input_tokens", json={"model": "vclaude-text", "input": "one two three four"})
    assert r.status_code == 200, r.text
    assert r.json()["input_tokens"] > 0
    seen = env.front.seen[-1]
    assert (seen["model"], seen["method"]) == ("count-tokens", "rawPredict")
    assert seen["body"]["model"] == "claude-scenario-text"
    assert seen["body"]["anthropic_version"] == "vertex-2023-10-16"


def test_an_upstream_401_is_the_operators_problem(env: VertexEnv, http: httpx.Client) -> None:
    env.anthropic.fail_next(401)
    r = http.post("/responses", json={"model": "vclaude-text", "input": "hi"})
    assert r.status_code == 502 and "Anthropic on Vertex AI" in r.json()["error"]["message"]
