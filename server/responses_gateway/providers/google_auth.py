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
from typing import Any

import google.auth
import google.auth.aws
import google.auth.credentials
import google.auth.exceptions
import google.auth.identity_pool
import google.auth.transport.requests
import google.oauth2.credentials
import google.oauth2.service_account
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


def _from_info(info: Mapping[str, Any]) -> google.auth.credentials.Credentials:
    """Credentials of a known type only (google-auth warns against loading any type from a config):
    a service-account key, a gcloud authorized-user file, or workload identity federation."""
    kind = info.get("type")
    scopes = [CLOUD_PLATFORM_SCOPE]
    if kind == "service_account":
        return google.oauth2.service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call,no-any-return]
            info, scopes=scopes
        )
    if kind == "authorized_user":
        return google.oauth2.credentials.Credentials.from_authorized_user_info(info, scopes=scopes)  # type: ignore[no-untyped-call,no-any-return]
    if kind == "external_account":
        source = info.get("credential_source") or {}
        if isinstance(source, dict) and str(source.get("environment_id", "")).startswith("aws"):
            return google.auth.aws.Credentials.from_info(info, scopes=scopes)  # type: ignore[no-untyped-call,no-any-return]
        return google.auth.identity_pool.Credentials.from_info(info, scopes=scopes)  # type: ignore[no-untyped-call,no-any-return]
    raise GatewayError(
        Reason.PROVIDER_NOT_CONFIGURED,
        f"vertex_credentials: credentials of type {kind!r} are not supported "
        "(service_account, authorized_user or external_account).",
    )


def load_credentials(vertex_credentials: str | None) -> google.auth.credentials.Credentials:
    """The deployment's credentials, scoped for Vertex AI. Blocking (files, maybe the metadata server)."""
    if not vertex_credentials:
        try:
            creds, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise GatewayError(
                Reason.PROVIDER_NOT_CONFIGURED,
                f"Vertex AI: no Application Default Credentials ({exc}); set vertex_credentials.",
            ) from None
        return creds
    info = credentials_info(vertex_credentials)
    if info is None:
        path = os.path.expanduser(vertex_credentials)
        try:
            with open(path, encoding="utf-8") as f:
                info = credentials_info(f.read())
        except OSError as exc:
            raise GatewayError(
                Reason.PROVIDER_NOT_CONFIGURED, f"vertex_credentials: cannot read {path!r}: {exc.strerror}"
            ) from None
        if info is None:
            raise GatewayError(Reason.PROVIDER_NOT_CONFIGURED, f"vertex_credentials: {path!r} is not JSON.")
    try:
        return _from_info(info)
    except (ValueError, KeyError, google.auth.exceptions.GoogleAuthError) as exc:
        raise GatewayError(
            Reason.PROVIDER_NOT_CONFIGURED, f"vertex_credentials: not usable credentials: {exc}"
        ) from None


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
