"""I/O shell of the Anthropic adapter: `{api_base}/v1/messages`, streamed (unary is the fold); on Vertex AI
(`vertex_ai/claude-...`) the same Messages API under Vertex's URL and Google auth (anthropic/vertex.py)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import orjson

from responses_gateway.config.providers import AuthStyle
from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.anthropic import hosted, vertex
from responses_gateway.providers.anthropic.request import count_tokens_request, messages_request
from responses_gateway.providers.anthropic.stream import AnthropicStream, error_of
from responses_gateway.providers.base import ProviderCall, UpstreamStream
from responses_gateway.providers.chat.request import as_create_request
from responses_gateway.providers.features import Unsupported
from responses_gateway.providers.http import (
    Headers,
    iter_sse_json,
    make_client,
    retry_after_seconds,
    transport_errors,
)
from responses_gateway.providers.openai.translate import upstream_error
from responses_gateway.providers.tool_mapping import tool_map
from responses_gateway.v1 import events_pb2, responses_service_pb2

if TYPE_CHECKING:
    from responses_gateway.providers.google_auth import TokenSource

ANTHROPIC_VERSION = "2023-06-01"


def anthropic_headers(deployment: ResolvedDeployment) -> dict[str, str]:
    if deployment.auth == AuthStyle.GOOGLE_OAUTH:  # Vertex: version in the body, Bearer per request
        return {"content-type": "application/json", **deployment.headers}
    headers = {
        "anthropic-version": ANTHROPIC_VERSION,
        "content-type": "application/json",
        **deployment.headers,
    }
    if deployment.api_key:
        headers["x-api-key"] = deployment.api_key
    return headers


class AnthropicProvider:
    def __init__(self, deployment: ResolvedDeployment) -> None:
        self.deployment = deployment
        self.name = f"Anthropic ({deployment.upstream_model})"
        self._client = make_client(deployment, anthropic_headers(deployment))
        self._auth: TokenSource | None = None
        self._path, self._count_path = "/v1/messages", "/v1/messages/count_tokens"
        if deployment.auth == AuthStyle.GOOGLE_OAUTH:
            self.name = f"Anthropic on Vertex AI ({deployment.upstream_model})"
            # google-auth (and `requests` under it) loads only for a Vertex AI deployment.
            from responses_gateway.providers.google_auth import vertex_token_source

            self._auth = vertex_token_source(deployment.api_key, deployment.vertex_credentials, self.name)
            self._path = vertex.stream_path(deployment.upstream_model)
            self._count_path = vertex.COUNT_TOKENS_PATH

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._auth is not None:
            self._auth.close()

    async def _auth_headers(self, headers: dict[str, str]) -> dict[str, str]:
        return headers if self._auth is None else {**headers, **await self._auth.headers()}

    def _error(self, status: int, raw: bytes, headers: Headers) -> GatewayError:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return error_of(body["error"], self.name, status, retry_after_seconds(headers))
        return upstream_error(status, raw, self.name, retry_after_seconds(headers))

    def open(self, call: ProviderCall) -> UpstreamStream:
        unsupported = Unsupported(self.name, drop=self.deployment.drop_params)
        tools = tool_map(call.request, unsupported, native=hosted.KINDS)
        body = messages_request(call.request, self.deployment.upstream_model, unsupported, tools)
        translator = AnthropicStream(self.name, tools, computer=hosted.offers_computer(body))
        betas = self._betas(body)
        if self._auth is not None:
            body = vertex.messages_body(body)
        events = self._events(orjson.dumps(body), betas, translator, call.timeout)
        return UpstreamStream(events, unsupported.dropped)

    def _betas(self, body: dict[str, Any]) -> dict[str, str]:
        configured = {k.lower(): v for k, v in self.deployment.headers.items()}.get("anthropic-beta")
        return hosted.beta_headers(body, configured)

    async def _events(
        self, body: bytes, headers: dict[str, str], translator: AnthropicStream, timeout: float | None
    ) -> AsyncGenerator[events_pb2.ResponseStreamEvent, None]:
        headers = await self._auth_headers(headers)
        with transport_errors(self.name, timeout):
            post = self._client.stream("POST", self._path, content=body, headers=headers, timeout=timeout)
            async with post as resp:
                if resp.status_code >= 400:
                    raise self._error(resp.status_code, await resp.aread(), resp.headers)
                for event in translator.start():
                    yield event
                async for parsed in iter_sse_json(resp, self.name):
                    for event in translator.event(parsed):
                        yield event
        for event in translator.end():
            yield event

    async def count_input_tokens(
        self, request: responses_service_pb2.CountInputTokensRequest
    ) -> responses_service_pb2.CountInputTokensResponse:
        """Anthropic's own count (`POST /v1/messages/count_tokens`) of the Messages request a create
        with the same body would send."""
        unsupported = Unsupported(self.name, drop=self.deployment.drop_params)
        body = count_tokens_request(as_create_request(request), self.deployment.upstream_model, unsupported)
        if self._auth is not None:
            body = vertex.count_tokens_body(body)
        headers = await self._auth_headers({})
        with transport_errors(self.name):
            resp = await self._client.request(
                "POST", self._count_path, content=orjson.dumps(body), headers=headers
            )
        if resp.status_code >= 400:
            raise self._error(resp.status_code, resp.content, resp.headers)
        try:
            count = orjson.loads(resp.content)["input_tokens"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            count = None
        if not isinstance(count, int) or isinstance(count, bool):
            raise GatewayError(
                Reason.UPSTREAM_ERROR, f"{self.name} sent a token count without `input_tokens`."
            )
        return responses_service_pb2.CountInputTokensResponse(
            object="response.input_tokens", input_tokens=count
        )
