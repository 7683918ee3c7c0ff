"""Azure AI Foundry (`azure_ai/<model>`): the chat bridge, or the Responses API with
`azure_ai/responses/<model>`, on the resource's own base, with the rules LiteLLM applies.

* Chat: a Foundry resource (`https://<res>.services.ai.azure.com`) serves the Model Inference API at
  `/models/chat/completions?api-version=...` (2024-05-01-preview unless `api_version` says otherwise);
  any other base (serverless `*.models.ai.azure.com`, a proxy) is OpenAI-compatible at
  `{api_base}/chat/completions`. A base already ending in `/chat/completions` is taken apart.
* Responses: the resource's v1 API, `{api_base}/openai/v1/responses` (as Azure OpenAI's, providers/azure).
* Auth: an Entra ID token (`azure_ad_token` / `AZURE_AD_TOKEN`) as `Authorization: Bearer`; otherwise
  the key, as `api-key` on Azure's own hosts (`*.services.ai.azure.com`, `*.openai.azure.com`) and as
  `Authorization: Bearer` elsewhere (serverless endpoints take it so).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit, urlunsplit

from responses_gateway.config.providers import AdapterKind
from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.providers.azure.adapter import azure_base
from responses_gateway.providers.base import Provider
from responses_gateway.providers.chat.adapter import ChatCompletionsProvider
from responses_gateway.providers.openai.adapter import OpenAIResponsesProvider

DEFAULT_API_VERSION = "2024-05-01-preview"
_KEY_HEADER_HOSTS = (".services.ai.azure.com", ".openai.azure.com")


def _is_foundry_resource(host: str) -> bool:
    return host.endswith(".services.ai.azure.com")


def chat_target(api_base: str, api_version: str | None) -> tuple[str, dict[str, str]]:
    """(base whose `/chat/completions` is the endpoint, query parameters)."""
    parts = urlsplit(api_base)
    params = dict(parse_qsl(parts.query))
    path = parts.path.rstrip("/").removesuffix("/chat/completions")
    host = parts.hostname or ""
    if _is_foundry_resource(host) and not path.endswith("/models"):
        path += "/models"
    version = api_version or params.get("api-version")
    if version is None and _is_foundry_resource(host):
        version = DEFAULT_API_VERSION
    params.pop("api-version", None)
    if version:
        params["api-version"] = version
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), params


def auth_headers(deployment: ResolvedDeployment) -> dict[str, str]:
    headers = dict(deployment.headers)
    if deployment.azure_ad_token:
        headers["authorization"] = f"Bearer {deployment.azure_ad_token}"
    elif deployment.api_key:
        host = urlsplit(deployment.api_base or "").hostname or ""
        if host.endswith(_KEY_HEADER_HOSTS):
            headers["api-key"] = deployment.api_key
        else:
            headers["authorization"] = f"Bearer {deployment.api_key}"
    return headers


def azure_ai_provider(deployment: ResolvedDeployment) -> Provider:
    api_base = deployment.api_base or ""
    if deployment.adapter == AdapterKind.RESPONSES:
        base, params = azure_base(api_base, deployment.api_version)
        return OpenAIResponsesProvider(
            deployment,
            name="Azure AI Foundry",
            base_url=base,
            headers=auth_headers(deployment),
            params=params,
        )
    base, params = chat_target(api_base, deployment.api_version)
    return ChatCompletionsProvider(deployment, base_url=base, headers=auth_headers(deployment), params=params)
