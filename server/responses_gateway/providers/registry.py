"""One provider instance per deployment, built on first use from its adapter kind."""

from __future__ import annotations

from collections.abc import Iterable

from responses_gateway.config.providers import AdapterKind, AuthStyle, ProviderKind
from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.anthropic.adapter import AnthropicProvider
from responses_gateway.providers.azure.adapter import azure_provider
from responses_gateway.providers.azure_ai.adapter import azure_ai_provider
from responses_gateway.providers.base import Provider
from responses_gateway.providers.chat.adapter import ChatCompletionsProvider
from responses_gateway.providers.gemini.adapter import GeminiProvider
from responses_gateway.providers.mock import MockProvider
from responses_gateway.providers.openai.adapter import OpenAIResponsesProvider
from responses_gateway.v1 import request_pb2


def preload(deployments: Iterable[ResolvedDeployment]) -> None:
    """Import now what the configured deployments' adapters would import on their first request
    (botocore for Bedrock, google-auth for Vertex AI: tens of milliseconds on the event loop, with
    every call in flight waiting); a gateway without such deployments never loads them."""
    for d in deployments:
        if d.adapter == AdapterKind.BEDROCK:
            import responses_gateway.providers.bedrock.adapter
        if d.auth == AuthStyle.GOOGLE_OAUTH:
            import responses_gateway.providers.google_auth  # noqa: F401


def build_provider(deployment: ResolvedDeployment) -> Provider:
    if deployment.mock_response is not None:
        return MockProvider(deployment)
    if deployment.provider == ProviderKind.AZURE_AI:
        return azure_ai_provider(deployment)
    if deployment.adapter == AdapterKind.RESPONSES:
        if deployment.provider == ProviderKind.AZURE:
            return azure_provider(deployment)
        return OpenAIResponsesProvider(deployment)
    if deployment.adapter == AdapterKind.CHAT_COMPLETIONS:
        return ChatCompletionsProvider(deployment)
    if deployment.adapter == AdapterKind.ANTHROPIC:
        return AnthropicProvider(deployment)
    if deployment.adapter == AdapterKind.GEMINI:
        return GeminiProvider(deployment)
    if deployment.adapter == AdapterKind.BEDROCK:
        # botocore (~25 MB) loads only in a gateway that has a Bedrock deployment.
        from responses_gateway.providers.bedrock.adapter import BedrockProvider

        return BedrockProvider(deployment)
    raise GatewayError(
        Reason.NOT_IMPLEMENTED,
        f"The gateway has no adapter for `{deployment.litellm_model}` ({deployment.adapter}) yet.",
        param="model",
    )


class ProviderRegistry:
    def __init__(self) -> None:
        self._providers: dict[str, Provider] = {}

    def get(self, deployment: ResolvedDeployment) -> Provider:
        provider = self._providers.get(deployment.deployment_id)
        if provider is None:
            provider = self._providers[deployment.deployment_id] = build_provider(deployment)
        return provider

    def for_request(
        self, deployment: ResolvedDeployment, request: request_pb2.CreateResponseRequest
    ) -> Provider:
        """The provider that answers `request` on `deployment`: LiteLLM's per-request `mock_response`
        (a string) is answered by the mock, and nothing goes upstream."""
        value = request.extra_fields.get("mock_response")
        if value is not None and value.WhichOneof("kind") == "string_value":
            return MockProvider(deployment, value.string_value)
        return self.get(deployment)

    def install(self, deployment_id: str, provider: Provider) -> None:
        """Serve a deployment with `provider` (tests: a scripted provider behind a real config)."""
        self._providers[deployment_id] = provider

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        self._providers.clear()
