"""Google OAuth access tokens for Vertex AI deployments, from google-auth.

Where the credentials come from, in LiteLLM's order:

* ``api_key`` set: it *is* an access token (``gcloud auth print-access-token``), sent as is and never
  refreshed (the gateway cannot refresh what it did not mint);
* ``vertex_credentials`` (or ``VERTEXAI_CREDENTIALS`` / ``GOOGLE_APPLICATION_CREDENTIALS``): a path to a
  JSON key file, or the JSON itself — a service-account key, an authorized-user file, or an
  external-account (workload identity federation) config;
* neither: Application Default Credentials (``google.auth.default()``): the gcloud user, or on GCE / GKE
  the metadata server (workload identity: the pod's Kubernetes service account, bound to a Google one).

google-auth's calls are blocking HTTP (the token endpoint, the metadata server), so they run in a worker
thread, one refresh at a time per deployment. A token is refreshed once google-auth calls it stale
(within ``google.auth._helpers.REFRESH_THRESHOLD``, a few minutes, of its expiry), so a request never
leaves with a token that expires on the way; if that early refresh fails, the still-valid token is used
and the next request tries again.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from typing import Any, cast

import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport.requests
import requests

from responses_gateway.errors import GatewayError, Reason

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Token and metadata calls are small; a stuck one must not hold every request of the deployment.
TOKEN_TIMEOUT_SECONDS = 30.0


def credentials_info(value: str) -> Mapping[str, Any] | None:
    """`vertex_credentials` as a parsed JSON object when it is JSON text (LiteLLM accepts both a path and
    the JSON itself); None when it is not JSON (then it is a path)."""
    text = value.strip()
    if not text.startswith("{"):
        return None
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise GatewayError(
            Reason.PROVIDER_NOT_CONFIGURED, f"vertex_credentials looks like JSON but does not parse: {exc}"
        ) from None
    if not isinstance(info, dict):
        raise GatewayError(Reason.PROVIDER_NOT_CONFIGURED, "vertex_credentials must be a JSON object.")
    return info


def load_credentials(vertex_credentials: str | None) -> google.auth.credentials.Credentials:
    """The deployment's credentials, scoped for Vertex AI. Blocking (files, maybe the metadata server)."""
    try:
        if vertex_credentials:
            info = credentials_info(vertex_credentials)
            if info is not None:
                creds, _ = google.auth.load_credentials_from_dict(  # type: ignore[no-untyped-call]
                    dict(info), scopes=[CLOUD_PLATFORM_SCOPE]
                )
            else:
                path = os.path.expanduser(vertex_credentials)
                creds, _ = google.auth.load_credentials_from_file(  # type: ignore[no-untyped-call]
                    path, scopes=[CLOUD_PLATFORM_SCOPE]
                )
        else:
            creds, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError as exc:
        where = "vertex_credentials" if vertex_credentials else "Application Default Credentials"
        raise GatewayError(
            Reason.PROVIDER_NOT_CONFIGURED,
            f"Vertex AI: no usable Google credentials ({where}): {exc}",
        ) from None
    return cast(google.auth.credentials.Credentials, creds)


class _TimedSession(requests.Session):
    """A session whose calls time out sooner than google-auth's default of 120 seconds."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        given = kwargs.get("timeout")
        if not isinstance(given, int | float) or given > TOKEN_TIMEOUT_SECONDS:
            kwargs["timeout"] = TOKEN_TIMEOUT_SECONDS
        return super().request(*args, **kwargs)


class GoogleTokenSource:
    """`Authorization: Bearer <token>` for one deployment, minted and refreshed by google-auth."""

    def __init__(self, vertex_credentials: str | None, provider: str) -> None:
        self._source = vertex_credentials
        self._provider = provider
        self._creds: google.auth.credentials.Credentials | None = None
        self._lock = asyncio.Lock()
        self._session = _TimedSession()
        self._request = google.auth.transport.requests.Request(self._session)

    async def headers(self) -> dict[str, str]:
        creds = self._creds
        if creds is None or creds.token_state is not google.auth.credentials.TokenState.FRESH:
            creds = await self._refreshed()
        return {"authorization": f"Bearer {creds.token}"}

    async def _refreshed(self) -> google.auth.credentials.Credentials:
        async with self._lock:
            creds = self._creds
            if creds is not None and creds.token_state is google.auth.credentials.TokenState.FRESH:
                return creds  # another request refreshed it while this one waited
            if creds is None:
                creds = self._creds = await asyncio.to_thread(load_credentials, self._source)
            stale = creds.token_state is google.auth.credentials.TokenState.STALE
            try:
                await asyncio.to_thread(creds.refresh, self._request)
            except (google.auth.exceptions.RefreshError, google.auth.exceptions.TransportError) as exc:
                if stale:  # expiring soon, not yet expired: use it and try again next time
                    return creds
                raise self._error(exc) from None
            if not creds.token:
                raise GatewayError(
                    Reason.UPSTREAM_AUTH_FAILED, f"{self._provider}: the token endpoint sent no access token."
                )
            return creds

    def _error(self, exc: Exception) -> GatewayError:
        # A refused grant is the operator's credentials, not the caller's: 502 upstream_auth_failed.
        # A token endpoint that cannot be reached is an unavailable upstream (503, retried elsewhere).
        if isinstance(exc, google.auth.exceptions.RefreshError) and not getattr(exc, "retryable", False):
            return GatewayError(
                Reason.UPSTREAM_AUTH_FAILED,
                f"{self._provider}: Google refused the deployment's credentials: {exc}",
            )
        return GatewayError(
            Reason.UPSTREAM_UNAVAILABLE, f"{self._provider}: could not get a Google access token: {exc}"
        )

    def close(self) -> None:
        self._session.close()


class StaticToken:
    """A raw access token from `api_key`: sent as given."""

    def __init__(self, token: str) -> None:
        self._headers = {"authorization": f"Bearer {token}"}

    async def headers(self) -> dict[str, str]:
        return self._headers

    def close(self) -> None:
        pass


TokenSource = GoogleTokenSource | StaticToken


def vertex_token_source(api_key: str | None, vertex_credentials: str | None, provider: str) -> TokenSource:
    return StaticToken(api_key) if api_key else GoogleTokenSource(vertex_credentials, provider)
