"""A Bedrock deployment's AWS settings, from LiteLLM's ``aws_*`` params and the AWS environment (pure).

Only what the config decides lives here: the region, the runtime endpoint, and which credential source
the deployment names. The credentials themselves are resolved, and refreshed, by botocore at run time
(``providers/bedrock/auth.py``), because they may come from places the config never sees (a profile,
a pod's web identity token, the instance metadata service).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .models import LiteLLMParams
from .secrets import lookup_env

# LiteLLM reads AWS_REGION_NAME first; the AWS SDKs read AWS_REGION, then AWS_DEFAULT_REGION.
REGION_ENV = ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")
# LiteLLM's default when nothing names a region.
DEFAULT_REGION = "us-west-2"
_ARN_REGION = re.compile(r"^arn:aws[a-z-]*:bedrock:([a-z0-9-]+):")


@dataclass(frozen=True, slots=True)
class BedrockSettings:
    region: str
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    # A web identity (OIDC) token, or the path of a file holding one (IRSA rotates the file).
    web_identity_token: str | None = field(default=None, repr=False)
    role_arn: str | None = None
    session_name: str | None = None
    sts_endpoint: str | None = None
    # Converse's `guardrailConfig`, applied to every request of the deployment.
    guardrail: Mapping[str, Any] | None = None


def runtime_base(region: str) -> str:
    return f"https://bedrock-runtime.{region}.amazonaws.com"


def bedrock_settings(p: LiteLLMParams, env: Mapping[str, str], model_id: str) -> BedrockSettings:
    """The region is the deployment's `aws_region_name`, else the environment's, else the region of
    the model's ARN (an inference profile or provisioned model), else LiteLLM's default."""
    region = p.aws_region_name
    for name in REGION_ENV:
        region = region or lookup_env(env, name)
    if not region:
        arn = _ARN_REGION.match(model_id)
        region = arn[1] if arn else DEFAULT_REGION
    return BedrockSettings(
        region=region,
        access_key_id=p.aws_access_key_id,
        secret_access_key=p.aws_secret_access_key,
        session_token=p.aws_session_token,
        profile=p.aws_profile_name,
        web_identity_token=p.aws_web_identity_token,
        role_arn=p.aws_role_name,
        session_name=p.aws_session_name,
        sts_endpoint=p.aws_sts_endpoint,
        guardrail=MappingProxyType(dict(p.guardrailConfig)) if p.guardrailConfig else None,
    )
