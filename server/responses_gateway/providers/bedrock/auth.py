"""AWS credentials and SigV4 signing for Bedrock, all through botocore (never hand-written).

Where the credentials come from, first match wins (LiteLLM's order):

1. `aws_access_key_id` + `aws_secret_access_key` (+ `aws_session_token`): those keys;
2. `aws_web_identity_token` (the token, or the path of a file holding it, as IRSA mounts) with
   `aws_role_name`: AssumeRoleWithWebIdentity on STS;
3. `aws_profile_name`: that profile of the shared config / credentials files (which may itself assume
   a role, use SSO, a credential process…);
4. otherwise botocore's default chain: the environment, the shared files' default profile, web
   identity from `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (EKS IRSA), the container endpoint
   (ECS, EKS Pod Identity), the instance metadata service.

`aws_role_name` without a web identity token assumes that role with the credentials of 1, 3 or 4.
STS is `aws_sts_endpoint` when set, else wherever botocore's own configuration says
(`AWS_ENDPOINT_URL_STS`, `sts_regional_endpoints`).

Temporary credentials are botocore's refreshable ones. Resolving or refreshing them is blocking I/O
(files, STS, metadata endpoints), so it runs in a worker thread, one at a time per deployment; signing
itself is pure CPU and runs on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    AssumeRoleWithWebIdentityCredentialFetcher,
    Credentials,
    DeferredRefreshableCredentials,
    ReadOnlyCredentials,
    RefreshableCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import FileWebIdentityTokenLoader

from responses_gateway.config.bedrock import BedrockSettings
from responses_gateway.errors import GatewayError, Reason

SERVICE = "bedrock"  # the signing name of bedrock-runtime
DEFAULT_SESSION_NAME = "responses-gateway"


def _token_loader(token: str) -> Callable[[], str]:
    """A file is read on every (re)fetch, so a token the kubelet rotated is picked up."""
    if os.path.isfile(token):
        return FileWebIdentityTokenLoader(token)  # type: ignore[no-any-return]
    return lambda: token


def resolve_credentials(settings: BedrockSettings) -> Credentials | None:
    """The deployment's credentials object (blocking: may read files and call STS / metadata)."""
    session = (
        botocore.session.Session(profile=settings.profile) if settings.profile else botocore.session.Session()
    )
    creator_args: dict[str, Any] = {"region_name": settings.region}
    if settings.sts_endpoint:
        creator_args["endpoint_url"] = settings.sts_endpoint
    client_creator = functools.partial(session.create_client, **creator_args)
    extra = {"RoleSessionName": settings.session_name or DEFAULT_SESSION_NAME}
    if settings.web_identity_token and settings.role_arn:
        fetcher = AssumeRoleWithWebIdentityCredentialFetcher(
            client_creator, _token_loader(settings.web_identity_token), settings.role_arn, extra_args=extra
        )
        return DeferredRefreshableCredentials(
            method="assume-role-with-web-identity", refresh_using=fetcher.fetch_credentials
        )
    base: Credentials | None
    if settings.access_key_id and settings.secret_access_key:
        base = Credentials(settings.access_key_id, settings.secret_access_key, settings.session_token)
    else:
        base = session.get_credentials()
    if base is None or not settings.role_arn:
        return base
    role = AssumeRoleCredentialFetcher(client_creator, base, settings.role_arn, extra_args=extra)
    return DeferredRefreshableCredentials(method="assume-role", refresh_using=role.fetch_credentials)


class AwsSigner:
    """One deployment's credentials (resolved on first use, refreshed before they expire) and SigV4."""

    def __init__(self, settings: BedrockSettings, provider: str) -> None:
        self.settings = settings
        self.provider = provider
        self._credentials: Credentials | None = None
        self._lock = asyncio.Lock()

    async def _frozen(self) -> ReadOnlyCredentials:
        creds = self._credentials
        if creds is None or (isinstance(creds, RefreshableCredentials) and creds.refresh_needed()):
            async with self._lock:  # one resolution / refresh at a time; the others wait for it
                try:
                    if self._credentials is None:
                        self._credentials = await asyncio.to_thread(resolve_credentials, self.settings)
                    creds = self._credentials
                    if creds is None:
                        raise GatewayError(
                            Reason.UPSTREAM_AUTH_FAILED,
                            f"{self.provider}: no AWS credentials found (set aws_access_key_id / "
                            "aws_secret_access_key, aws_profile_name, aws_web_identity_token + "
                            "aws_role_name, or give the gateway an AWS role).",
                        )
                    return await asyncio.to_thread(creds.get_frozen_credentials)
                except (BotoCoreError, ClientError) as e:
                    raise GatewayError(
                        Reason.UPSTREAM_AUTH_FAILED, f"{self.provider} could not get AWS credentials: {e}"
                    ) from e
        return creds.get_frozen_credentials()

    async def sign(self, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        """`headers` plus the SigV4 ones (`X-Amz-Date`, `X-Amz-Security-Token`, `Authorization`) for a
        POST of `body` to `url`; the request must then be sent with exactly these headers' values."""
        frozen = await self._frozen()
        request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
        SigV4Auth(frozen, SERVICE, self.settings.region).add_auth(request)
        return dict(request.headers.items())
