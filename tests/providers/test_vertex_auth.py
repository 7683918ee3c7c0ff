"""Gemini on Vertex AI with real Google credentials: a service-account key (JSON text or a file) whose
JWT grant the fake token endpoint checks, tokens cached while fresh and refreshed before they expire,
the raw `api_key` token, refused credentials; and the shared scenario suite over Vertex's Gemini."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from responses_gateway.config.provider_urls import vertex_api_base, vertex_publisher
from tests.providers import vertex_env
from tests.providers.conftest import Adapter
from tests.providers.test_errors import (  # noqa: F401  (the shared suite, run here over Vertex)
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
from tests.providers.vertex_env import LOCATION, PROJECT, RAW_TOKEN, VertexEnv

MODEL_PATH = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models"

# The Vertex gateway's fixtures replace conftest's for this module.
env, http, client, stub = vertex_env.env, vertex_env.http, vertex_env.client, vertex_env.stub


@pytest.fixture
def adapter(env: VertexEnv) -> Adapter:
    return env.adapters["gemini"]


def test_service_account_key_gets_a_token_and_vertex_sees_it(env: VertexEnv, client: openai.OpenAI) -> None:
    assert client.responses.create(model="vgem-text", input="hi").output_text
    (seen,) = env.front.seen
    assert (seen["project"], seen["location"], seen["publisher"]) == (PROJECT, LOCATION, "google")
    assert (seen["model"], seen["method"], seen["query"]) == (
        "scenario-text",
        "streamGenerateContent",
        "alt=sse",
    )
    token = seen["headers"]["authorization"].removeprefix("Bearer ")
    assert token in env.oauth.issued and env.oauth.valid(token)  # minted by the fake for this key
    assert "x-goog-api-key" not in seen["headers"]


def test_a_fresh_token_is_reused(env: VertexEnv, client: openai.OpenAI) -> None:
    for _ in range(3):
        client.responses.create(model="vgem-text", input="hi")
    tokens = {s["headers"]["authorization"] for s in env.front.seen}
    assert len(tokens) == 1 and len(env.oauth.grants) <= 1  # the first test may have minted it


def test_an_expiring_token_is_refreshed_before_the_next_call(env: VertexEnv, client: openai.OpenAI) -> None:
    env.oauth.expires_in = 2  # within google-auth's refresh margin at once, and expired 2 s later
    client.responses.create(model="vshort-text", input="hi")
    first = env.front.seen[-1]["headers"]["authorization"].removeprefix("Bearer ")
    time.sleep(2.2)
    assert not env.oauth.valid(first)  # the fake Vertex would refuse it now
    client.responses.create(model="vshort-text", input="again")
    second = env.front.seen[-1]["headers"]["authorization"].removeprefix("Bearer ")
    assert second != first and env.oauth.valid(second)
    # two JWT grants, each signed with the key's private half (the fake checked the signature)
    assert [g["iss"] for g in env.oauth.grants] == [env.accounts["json"].email] * 2


def test_concurrent_calls_share_one_refresh(env: VertexEnv, http: httpx.Client) -> None:
    import concurrent.futures

    env.oauth.expires_in = 3600
    time.sleep(2.2)  # any short-lived token of an earlier test is gone
    grants = len(env.oauth.grants)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        statuses = list(
            pool.map(
                lambda _: http.post("/responses", json={"model": "vgem-text", "input": "hi"}).status_code,
                range(6),
            )
        )
    assert statuses == [200] * 6
    assert len(env.oauth.grants) - grants <= 1


def test_raw_token_in_api_key_is_sent_as_is(env: VertexEnv, client: openai.OpenAI) -> None:
    client.responses.create(model="vraw-text", input="hi")
    assert env.front.seen[-1]["headers"]["authorization"] == f"Bearer {RAW_TOKEN}"
    assert env.oauth.grants == []


def test_refused_credentials_are_a_502_naming_the_cause(env: VertexEnv, http: httpx.Client) -> None:
    r = http.post("/responses", json={"model": "vbad-text", "input": "hi"})
    assert r.status_code == 502, r.text
    error = r.json()["error"]
    assert (
        error["code"] == "upstream_auth_failed" and "refused the deployment's credentials" in error["message"]
    )
    assert env.front.seen == []  # nothing went to Vertex without a token


def test_a_refused_refresh_is_retried_on_the_next_call(env: VertexEnv, http: httpx.Client) -> None:
    env.oauth.expires_in = 2
    assert http.post("/responses", json={"model": "vretry-text", "input": "hi"}).status_code == 200
    time.sleep(2.2)
    env.oauth.refuse_next(400, "invalid_grant")
    r = http.post("/responses", json={"model": "vretry-text", "input": "hi"})
    assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_auth_failed"
    env.oauth.expires_in = 3600
    assert http.post("/responses", json={"model": "vretry-text", "input": "hi"}).status_code == 200


def test_count_tokens_on_vertex_carries_the_token(env: VertexEnv, http: httpx.Client) -> None:
    r = http.post("/responses/input_tokens", json={"model": "vgem-text", "input": "one two three"})
    assert r.status_code == 200, r.text
    seen = env.front.seen[-1]
    assert seen["method"] == "countTokens" and seen["headers"]["authorization"].startswith(
        "Bearer ya29.fake-"
    )


def test_vertex_urls() -> None:
    assert vertex_publisher("claude-sonnet-4@20250514") == "anthropic"
    assert vertex_publisher("gemini-2.5-pro") == "google"
    assert vertex_api_base(None, "p", "us-central1", "google") == (
        "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google"
    )
    assert vertex_api_base(None, "p", "global", "anthropic") == (
        "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/anthropic"
    )
    assert vertex_api_base("https://psc.example/", "p", "europe-west1", "google") == (
        "https://psc.example/v1/projects/p/locations/europe-west1/publishers/google"
    )
    assert (
        vertex_api_base("https://proxy.example/custom/", None, "x", "google")
        == "https://proxy.example/custom"
    )
    assert vertex_api_base(None, None, "us-central1", "google") is None
