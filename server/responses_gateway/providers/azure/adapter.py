"""Azure OpenAI's Responses API: the OpenAI adapter with Azure's URL, `api-version` and `api-key`.

Two URL shapes exist: the versionless v1 API (`{resource}/openai/v1/responses`, used when no
api_version is set or it is `v1` / `latest` / `preview`) and the dated one
(`{resource}/openai/responses?api-version=2025-04-01-preview`).
"""

from __future__ import annotations

from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.providers.openai.adapter import OpenAIResponsesProvider

_VERSIONLESS = {"", "v1", "latest", "preview"}


def azure_base(api_base: str, api_version: str | None) -> tuple[str, dict[str, str]]:
    """(base URL whose `/responses` is the endpoint, query parameters)."""
    base = api_base.rstrip("/")
    version = (api_version or "").strip()
    if base.endswith("/openai/v1"):
        return base, ({"api-version": version} if version in ("preview",) else {})
    if version in _VERSIONLESS:
        return f"{base}/openai/v1", ({"api-version": version} if version == "preview" else {})
    if not base.endswith("/openai"):
        base = f"{base}/openai"
    return base, {"api-version": version}


def azure_provider(deployment: ResolvedDeployment) -> OpenAIResponsesProvider:
    base, params = azure_base(deployment.api_base or "", deployment.api_version)
    headers = dict(deployment.headers)
    if deployment.api_key:
        headers["api-key"] = deployment.api_key
    return OpenAIResponsesProvider(
        deployment, name="Azure OpenAI", base_url=base, headers=headers, params=params
    )
