"""I/O shell of the Gemini adapter: `{api_base}/models/{model}:streamGenerateContent?alt=sse`."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import orjson

from responses_gateway.config.providers import AuthStyle
from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.base import ProviderCall, UpstreamStream
from responses_gateway.providers.chat.request import as_create_request
from responses_gateway.providers.features import Unsupported
from responses_gateway.providers.gemini import hosted
from responses_gateway.providers.gemini.request import count_tokens_request, generate_request
from responses_gateway.providers.gemini.stream import GeminiStream
from responses_gateway.providers.http import (
    Headers,
    iter_sse_json,
    make_client,
    path_segment,
    retry_after_seconds,
    transport_errors,
)
from responses_gateway.providers.openai.translate import upstream_error
from responses_gateway.providers.tool_mapping import ToolMap, tool_map
from responses_gateway.v1 import events_pb2, responses_service_pb2

if TYPE_CHECKING:
    from responses_gateway.providers.google_auth import TokenSource


def gemini_headers(deployment: ResolvedDeployment) -> dict[str, str]:
    headers = {"content-type": "application/json", **deployment.headers}
    # Vertex AI's Bearer token is per request (providers/google_auth.py); AI Studio takes a fixed key.
    if deployment.api_key and deployment.auth != AuthStyle.GOOGLE_OAUTH:
        headers["x-goog-api-key"] = deployment.api_key
    return headers


_NO_AUTH: dict[str, str] = {}


def retry_info_seconds(raw: bytes) -> float | None:
    """The delay of a `google.rpc.RetryInfo` error detail (`"retryDelay": "13s"`): Google says when to
    retry there rather than in a Retry-After header."""
    try:
        details = orjson.loads(raw)["error"]["details"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = str(detail.get("retryDelay", ""))
            try:
                return float(delay.removesuffix("s"))
            except ValueError:
                return None
    return None


class GeminiProvider:
    def __init__(self, deployment: ResolvedDeployment) -> None:
        self.deployment = deployment
        self.name = f"Gemini ({deployment.upstream_model})"
        model = path_segment(deployment.upstream_model)
        self._path = f"/models/{model}:streamGenerateContent"
        self._count_path = f"/models/{model}:countTokens"
        self._client = make_client(deployment, gemini_headers(deployment))
        self._auth: TokenSource | None = None
        if deployment.auth == AuthStyle.GOOGLE_OAUTH:
            # google-auth (and `requests` under it) loads only for a Vertex AI deployment.
            from responses_gateway.providers.google_auth import vertex_token_source

            self._auth = vertex_token_source(deployment.api_key, deployment.vertex_credentials, self.name)

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._auth is not None:
            self._auth.close()

    async def _auth_headers(self) -> dict[str, str]:
        return _NO_AUTH if self._auth is None else await self._auth.headers()

    def _error(self, status: int, raw: bytes, headers: Headers) -> GatewayError:
        retry = retry_after_seconds(headers)
        if retry is None:
            retry = retry_info_seconds(raw)
        return upstream_error(status, raw, self.name, retry)

    def open(self, call: ProviderCall) -> UpstreamStream:
        unsupported = Unsupported(self.name, drop=self.deployment.drop_params)
        tools = tool_map(call.request, unsupported, native=hosted.KINDS)
        body = generate_request(call.request, unsupported, tools)
        return UpstreamStream(self._events(orjson.dumps(body), call.timeout, tools), unsupported.dropped)

    async def _events(
        self, body: bytes, timeout: float | None, tools: ToolMap
    ) -> AsyncGenerator[events_pb2.ResponseStreamEvent, None]:
        translator = GeminiStream(self.name, tools)
        auth = await self._auth_headers()
        with transport_errors(self.name, timeout):
            async with self._client.stream(
                "POST", self._path, params={"alt": "sse"}, content=body, headers=auth, timeout=timeout
            ) as resp:
                if resp.status_code >= 400:
                    raw = await resp.aread()
                    raise self._error(resp.status_code, raw, resp.headers)
                for event in translator.start():
                    yield event
                async for chunk in iter_sse_json(resp, self.name):
                    for event in translator.chunk(chunk):
                        yield event
        for event in translator.end():
            yield event

    async def count_input_tokens(
        self, request: responses_service_pb2.CountInputTokensRequest
    ) -> responses_service_pb2.CountInputTokensResponse:
        """Gemini's own count (`models/{model}:countTokens`) of the request a create would send."""
        unsupported = Unsupported(self.name, drop=self.deployment.drop_params)
        body = count_tokens_request(
            as_create_request(request),
            self.deployment.upstream_model,
            unsupported,
            vertex=self.deployment.auth == AuthStyle.GOOGLE_OAUTH,
        )
        auth = await self._auth_headers()
        with transport_errors(self.name):
            resp = await self._client.request(
                "POST", self._count_path, content=orjson.dumps(body), headers=auth
            )
        if resp.status_code >= 400:
            raise self._error(resp.status_code, resp.content, resp.headers)
        try:
            # proto3 JSON leaves a zero out: an empty input counts `{}`.
            count = orjson.loads(resp.content).get("totalTokens", 0)
        except (orjson.JSONDecodeError, AttributeError):
            count = None
        if not isinstance(count, int) or isinstance(count, bool):
            raise GatewayError(
                Reason.UPSTREAM_ERROR, f"{self.name} sent a token count without `totalTokens`."
            )
        return responses_service_pb2.CountInputTokensResponse(
            object="response.input_tokens", input_tokens=count
        )
