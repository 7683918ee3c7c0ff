"""A gateway in front of the fake Bedrock and two fake STS endpoints, for the Bedrock suites.

Deployments (wildcards pick the fake's transcript from the model id, `…scenario-<name>`):

    brk-*    bedrock/us.anthropic.scenario-*            static keys (aws_access_key_id / secret)
    brkc-*   bedrock/converse/us.anthropic.scenario-*   LiteLLM's converse route, aws_bedrock_runtime_endpoint
    brkd-*   as brk-* with drop_params: true
    brkarn   bedrock/arn:aws:bedrock:us-east-1:…:inference-profile/us.anthropic.scenario-text (region from the ARN)
    brkkey   a Bedrock API key (Bearer), no SigV4
    brkg     a deployment guardrailConfig
    brkwi    aws_web_identity_token (a token file) + aws_role_name, STS at aws_sts_endpoint (1 h keys)
    brkws    the same against an STS issuing 5-minute keys (inside botocore's refresh window)
    brkbad   a wrong secret;  brkreg  the wrong region
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.bedrock_upstream import FakeBedrock, FakeSts
from tests.support.inprocess import InProcessGateway

REGION = "us-east-1"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
API_KEY = "bedrock-api-key-0123456789"
ROLE = "arn:aws:iam::123456789012:role/gateway-bedrock"
SHORT_ROLE = "arn:aws:iam::123456789012:role/gateway-bedrock-short"
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl"
ARN_MODEL = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.scenario-text"
GUARDRAIL = {"guardrailIdentifier": "gr0abc123xyz", "guardrailVersion": "1", "trace": "enabled"}


@dataclass
class BedrockEnv:
    gw: InProcessGateway
    bedrock: FakeBedrock
    sts: FakeSts
    short_sts: FakeSts
    base: str
    token_file: Path  # the web identity token the brkwi / brkws deployments read

    def reset(self) -> None:
        self.bedrock.reset()


def _keys(**extra: Any) -> dict[str, Any]:
    return {
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET,
        "aws_region_name": REGION,
        **extra,
    }


def config(base: str, sts: str, short_sts: str, token_file: Path, store: Path) -> dict[str, Any]:
    def dep(name: str, model: str, **params: Any) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {"model": model, **params}}

    web = {
        "aws_web_identity_token": str(token_file),
        "aws_session_name": "gw-test",
        "aws_region_name": REGION,
    }
    models = [
        dep("brk-*", "bedrock/us.anthropic.scenario-*", api_base=base, **_keys()),
        dep(
            "brkc-*", "bedrock/converse/us.anthropic.scenario-*", aws_bedrock_runtime_endpoint=base, **_keys()
        ),
        dep("brkd-*", "bedrock/us.anthropic.scenario-*", api_base=base, drop_params=True, **_keys()),
        dep(
            "brkarn",
            f"bedrock/{ARN_MODEL}",
            api_base=base,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET,
        ),
        dep("brkkey", "bedrock/us.anthropic.scenario-text", api_base=base, api_key=API_KEY),
        dep(
            "brkg", "bedrock/us.anthropic.scenario-text", api_base=base, guardrailConfig=GUARDRAIL, **_keys()
        ),
        dep(
            "brkwi",
            "bedrock/us.anthropic.scenario-text",
            api_base=base,
            aws_role_name=ROLE,
            aws_sts_endpoint=sts,
            **web,
        ),
        dep(
            "brkws",
            "bedrock/us.anthropic.scenario-text",
            api_base=base,
            aws_role_name=SHORT_ROLE,
            aws_sts_endpoint=short_sts,
            **web,
        ),
        dep(
            "brkbad",
            "bedrock/us.anthropic.scenario-text",
            api_base=base,
            **_keys(aws_secret_access_key="wrong"),
        ),
        dep(
            "brkreg",
            "bedrock/us.anthropic.scenario-text",
            api_base=base,
            **_keys(aws_region_name="eu-west-3"),
        ),
    ]
    return {"model_list": models, "gateway_settings": {"store": {"type": "sqlite", "path": str(store)}}}


@contextlib.contextmanager
def bedrock_env(tmp: Path) -> Iterator[BedrockEnv]:
    fake = FakeBedrock(api_key=API_KEY, region=REGION)
    fake.add_key(ACCESS_KEY, SECRET)
    sts = FakeSts(fake, ROLE, WEB_TOKEN)
    short = FakeSts(fake, SHORT_ROLE, WEB_TOKEN, lifetime=300)
    token_file = tmp / "web-identity-token"
    token_file.write_text(WEB_TOKEN + "\n")
    with fake.serve() as base, sts.serve() as sts_base, short.serve() as short_base:
        cfg = tmp / "gateway.json"
        cfg.write_text(json.dumps(config(base, sts_base, short_base, token_file, tmp / "responses.db")))
        gw = InProcessGateway(cfg, grace_seconds=1)
        try:
            yield BedrockEnv(gw, fake, sts, short, base, token_file)
        finally:
            gw.close()
