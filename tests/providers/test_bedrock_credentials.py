"""Bedrock's AWS credential chain, against a fake STS and the fake Bedrock on loopback: a web identity
token file with a role (LiteLLM's params, and EKS IRSA's environment), refresh before expiry, shared
credential profiles, STS refusing the token, and no credentials at all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from responses_gateway.config.bedrock import BedrockSettings
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.bedrock.auth import AwsSigner, resolve_credentials
from tests.fakes.bedrock_upstream import FakeBedrock, FakeSts
from tests.providers.bedrock_support import REGION, ROLE, SHORT_ROLE, WEB_TOKEN, BedrockEnv, bedrock_env
from tests.support.process import GatewayProcess, clean_env


@pytest.fixture(scope="module")
def benv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BedrockEnv]:
    with bedrock_env(tmp_path_factory.mktemp("bedrock-creds")) as env:
        yield env


def _ask(env: BedrockEnv, model: str) -> httpx.Response:
    return httpx.post(f"{env.gw.http_base}/v1/responses", json={"model": model, "input": "hi"}, timeout=30)


def test_web_identity_token_file_and_role(benv: BedrockEnv) -> None:
    """`aws_web_identity_token` (a file) + `aws_role_name` + `aws_sts_endpoint`: AssumeRoleWithWebIdentity
    once, its temporary keys (with their session token) sign the calls, and are reused while fresh."""
    for _ in range(2):
        resp = _ask(benv, "brkwi")
        assert resp.status_code == 200, resp.text
    (call,) = benv.sts.calls
    assert call["Action"] == "AssumeRoleWithWebIdentity" and call["RoleArn"] == ROLE
    assert call["RoleSessionName"] == "gw-test" and call["WebIdentityToken"].strip() == WEB_TOKEN
    (issued,) = benv.sts.issued
    assert [s.access_key for s in benv.bedrock.signed] == [issued, issued]
    secret_token = benv.bedrock.keys[issued][1]
    assert all(
        s.token == secret_token and "x-amz-security-token" in s.signed_headers for s in benv.bedrock.signed
    )


def test_credentials_refresh_before_they_expire(benv: BedrockEnv) -> None:
    """Keys valid for 5 minutes are inside botocore's refresh window: each call refreshes them first
    (off the event loop), re-reading the token file, which the kubelet may have rotated meanwhile."""
    assert _ask(benv, "brkws").status_code == 200
    token_file = benv.token_file
    rotated = WEB_TOKEN + ".rotated"
    original = token_file.read_text()
    token_file.write_text(rotated)
    benv.short_sts.token = rotated
    try:
        assert _ask(benv, "brkws").status_code == 200
    finally:
        token_file.write_text(original)
        benv.short_sts.token = WEB_TOKEN
    assert [c["RoleArn"] for c in benv.short_sts.calls] == [SHORT_ROLE, SHORT_ROLE]
    assert benv.short_sts.calls[1]["WebIdentityToken"] == rotated
    first, second = benv.short_sts.issued
    assert [s.access_key for s in benv.bedrock.signed if s.access_key in (first, second)] == [first, second]


def test_no_credentials_anywhere_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = BedrockSettings(region=REGION)
    assert resolve_credentials(settings) is None
    with pytest.raises(GatewayError) as caught:
        asyncio.run(AwsSigner(settings, "Bedrock (m)").sign("https://example.com/x", b"{}", {}))
    assert caught.value.reason is Reason.UPSTREAM_AUTH_FAILED
    assert "no AWS credentials found" in caught.value.message


# ------------------------------------------------------------------------------------------ a real process
@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A gateway process whose environment is an EKS pod's (IRSA: AWS_WEB_IDENTITY_TOKEN_FILE,
    AWS_ROLE_ARN, STS at AWS_ENDPOINT_URL_STS) plus a shared credentials file with a profile."""
    tmp = tmp_path_factory.mktemp("bedrock-chain")
    fake = FakeBedrock(region=REGION)
    fake.add_key("AKIAPROFILEEXAMPLE1", "profile-secret")
    sts = FakeSts(fake, ROLE, WEB_TOKEN)
    token = tmp / "token"
    token.write_text(WEB_TOKEN)
    (tmp / "credentials").write_text(
        "[gw]\naws_access_key_id = AKIAPROFILEEXAMPLE1\naws_secret_access_key = profile-secret\n"
    )
    with fake.serve() as base, sts.serve() as sts_base:
        models = [
            {
                "model_name": "irsa",
                "litellm_params": {"model": "bedrock/us.anthropic.scenario-text", "api_base": base},
            },
            {
                "model_name": "profile",
                "litellm_params": {
                    "model": "bedrock/us.anthropic.scenario-text",
                    "api_base": base,
                    "aws_profile_name": "gw",
                },
            },
            {
                "model_name": "badtoken",
                "litellm_params": {
                    "model": "bedrock/us.anthropic.scenario-text",
                    "api_base": base,
                    "aws_web_identity_token": "not-the-token",
                    "aws_role_name": ROLE,
                    "aws_sts_endpoint": sts_base,
                },
            },
        ]
        cfg = tmp / "gateway.json"
        store = {"store": {"type": "sqlite", "path": str(tmp / "r.db")}}
        cfg.write_text(json.dumps({"model_list": models, "gateway_settings": store}))
        env = clean_env(
            AWS_WEB_IDENTITY_TOKEN_FILE=str(token),
            AWS_ROLE_ARN=ROLE,
            AWS_ROLE_SESSION_NAME="irsa-session",
            AWS_ENDPOINT_URL_STS=sts_base,
            AWS_REGION=REGION,
            AWS_CONFIG_FILE=str(tmp / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp / "credentials"),
            AWS_EC2_METADATA_DISABLED="true",
        )
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(name, None)
        gw = GatewayProcess(cfg, cwd=tmp, env=env, grace=1).start()
        try:
            yield {"gw": gw, "fake": fake, "sts": sts}
        finally:
            gw.stop()


def _post(chain: dict[str, Any], model: str) -> httpx.Response:
    return httpx.post(
        f"{chain['gw'].http_base}/v1/responses", json={"model": model, "input": "hi"}, timeout=30
    )


def test_irsa_environment_through_botocores_default_chain(chain: dict[str, Any]) -> None:
    resp = _post(chain, "irsa")
    assert resp.status_code == 200, resp.text + chain["gw"].log
    calls = [c for c in chain["sts"].calls if c["WebIdentityToken"] == WEB_TOKEN]
    assert calls and calls[0]["RoleArn"] == ROLE and calls[0]["RoleSessionName"] == "irsa-session"
    assert chain["fake"].signed[-1].access_key in chain["sts"].issued


def test_a_named_profile_from_the_shared_credentials_file(chain: dict[str, Any]) -> None:
    resp = _post(chain, "profile")
    assert resp.status_code == 200, resp.text
    assert chain["fake"].signed[-1].access_key == "AKIAPROFILEEXAMPLE1"


def test_sts_refusing_the_token_is_an_upstream_auth_error(chain: dict[str, Any]) -> None:
    resp = _post(chain, "badtoken")
    assert resp.status_code == 502, resp.text
    error = resp.json()["error"]
    assert error["code"] == "upstream_auth_failed"
    assert "could not get AWS credentials" in error["message"] and "InvalidIdentityToken" in error["message"]
