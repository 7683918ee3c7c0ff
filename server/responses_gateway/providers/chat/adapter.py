"""I/O shell of the Chat Completions bridge: `{api_base}/chat/completions`, always streamed upstream
(a unary call is the fold of the stream)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import orjson

from responses_gateway.config.providers import ProviderKind
from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.providers.base import ProviderCall, UpstreamStream
from responses_gateway.providers.chat.request import chat_request
from responses_gateway.providers.chat.stream import ChatStream
from responses_gateway.providers.features import Unsupported
from responses_gateway.providers.http import iter_sse_json, make_client, retry_after_seconds, transport_errors
from responses_gateway.providers.openai.adapter import auth_headers
from responses_gateway.providers.openai.translate import upstream_error
from responses_gateway.providers.tool_mapping import ToolMap, tool_map
from responses_gateway.v1 import events_pb2

_JSON = {"content-type": "application/json"}


class ChatCompletionsProvider:
    def __init__(
        self,
        deployment: ResolvedDeployment,
        *,
        base_url: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> None:
        """`base_url`, `headers`, `params`: for upstreams whose URL, auth or query (Azure AI's
        `api-version`) differ from the OpenAI-style default."""
        self.deployment = deployment
        self.name = f"{deployment.provider or 'chat'} ({deployment.litellm_model})"
        self._params = params or None
        self._client = make_client(
            deployment, headers if headers is not None else auth_headers(deployment), base_url=base_url
        )
        # OpenAI's reasoning models refuse `max_tokens`; other chat servers mostly know only it.
        self._max_key = (
            "max_completion_tokens" if deployment.provider == ProviderKind.OPENAI else "max_tokens"
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def open(self, call: ProviderCall) -> UpstreamStream:
        unsupported = Unsupported(self.name, drop=self.deployment.drop_params)
        tools = tool_map(call.request, unsupported)
        body = chat_request(
            call.request,
            self.deployment.upstream_model,
            unsupported,
            max_tokens_key=self._max_key,
            tools=tools,
        )
        return UpstreamStream(self._events(orjson.dumps(body), call.timeout, tools), unsupported.dropped)

    async def _events(
        self, body: bytes, timeout: float | None, tools: ToolMap
    ) -> AsyncGenerator[events_pb2.ResponseStreamEvent, None]:
        translator = ChatStream(self.name, tools)
        with transport_errors(self.name, timeout):
            async with self._client.stream(
                "POST", "/chat/completions", content=body, headers=_JSON, params=self._params, timeout=timeout
            ) as resp:
                if resp.status_code >= 400:
                    raw = await resp.aread()
                    raise upstream_error(resp.status_code, raw, self.name, retry_after_seconds(resp.headers))
                for event in translator.start():
                    yield event
                async for chunk in iter_sse_json(resp, self.name):
                    for event in translator.chunk(chunk):
                        yield event
        for event in translator.end():
            yield event
