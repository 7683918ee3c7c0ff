"""I/O shell of the OpenAI Responses adapter: `{api_base}/responses` over the pooled upstream client (providers/http.py)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, TypeVar

from google.protobuf.message import Message

from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.providers.base import ProviderCall, UpstreamStream
from responses_gateway.providers.http import (
    iter_sse_data,
    make_client,
    path_segment,
    retry_after_seconds,
    transport_errors,
)
from responses_gateway.providers.openai import translate
from responses_gateway.v1 import events_pb2, response_pb2, responses_service_pb2

_JSON = {"content-type": "application/json"}
M = TypeVar("M", bound=Message)


def auth_headers(deployment: ResolvedDeployment) -> dict[str, str]:
    headers = dict(deployment.headers)
    if deployment.api_key:
        headers["authorization"] = f"Bearer {deployment.api_key}"
    if deployment.organization:
        headers["openai-organization"] = deployment.organization
    return headers


class OpenAIResponsesProvider:
    """Pass-through to a native Responses API; the upstream also keeps state, so it can answer
    `previous_response_id`, retrieve, delete, cancel and input_items itself."""

    def __init__(
        self,
        deployment: ResolvedDeployment,
        *,
        name: str = "OpenAI",
        base_url: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> None:
        self.deployment = deployment
        self.name = name
        self._params = params or {}
        self._client = make_client(
            deployment, headers if headers is not None else auth_headers(deployment), base_url=base_url
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def open(self, call: ProviderCall) -> UpstreamStream:
        body = translate.request_body(call.request, self.deployment.upstream_model, stream=True)
        return UpstreamStream(self._events(body, call.timeout))

    async def _events(
        self, body: bytes, timeout: float | None
    ) -> AsyncGenerator[events_pb2.ResponseStreamEvent, None]:
        with transport_errors(self.name, timeout):
            async with self._client.stream(
                "POST", "/responses", content=body, headers=_JSON, params=self._params, timeout=timeout
            ) as resp:
                if resp.status_code >= 400:
                    raw = await resp.aread()
                    raise translate.upstream_error(
                        resp.status_code, raw, self.name, retry_after_seconds(resp.headers)
                    )
                async for data in iter_sse_data(resp):
                    if data == "[DONE]":
                        return
                    yield translate.parse_event(data, self.name)

    async def create(self, call: ProviderCall) -> response_pb2.Response:
        body = translate.request_body(call.request, self.deployment.upstream_model, stream=False)
        return await self._call(
            "POST", "/responses", response_pb2.Response(), content=body, timeout=call.timeout
        )

    async def retrieve(self, response_id: str) -> response_pb2.Response:
        return await self._call("GET", f"/responses/{path_segment(response_id)}", response_pb2.Response())

    async def delete(self, response_id: str) -> responses_service_pb2.DeleteResponseResponse:
        return await self._call(
            "DELETE",
            f"/responses/{path_segment(response_id)}",
            responses_service_pb2.DeleteResponseResponse(),
        )

    async def cancel(self, response_id: str) -> response_pb2.Response:
        return await self._call(
            "POST", f"/responses/{path_segment(response_id)}/cancel", response_pb2.Response()
        )

    async def list_input_items(
        self, request: responses_service_pb2.ListInputItemsRequest
    ) -> responses_service_pb2.ListInputItemsResponse:
        params: dict[str, Any] = {}
        if request.HasField("after"):
            params["after"] = request.after
        if request.HasField("limit"):
            params["limit"] = request.limit
        if request.order:
            params["order"] = "desc" if request.order == responses_service_pb2.LIST_ORDER_DESC else "asc"
        return await self._call(
            "GET",
            f"/responses/{path_segment(request.response_id)}/input_items",
            responses_service_pb2.ListInputItemsResponse(),
            query=params,
        )

    async def count_input_tokens(
        self, request: responses_service_pb2.CountInputTokensRequest
    ) -> responses_service_pb2.CountInputTokensResponse:
        body = translate.message_body(request, self.deployment.upstream_model)
        return await self._call(
            "POST", "/responses/input_tokens", responses_service_pb2.CountInputTokensResponse(), content=body
        )

    async def compact(
        self, request: responses_service_pb2.CompactResponseRequest
    ) -> responses_service_pb2.CompactResponseResponse:
        body = translate.message_body(request, self.deployment.upstream_model)
        return await self._call(
            "POST", "/responses/compact", responses_service_pb2.CompactResponseResponse(), content=body
        )

    async def _call(
        self,
        method: str,
        path: str,
        out: M,
        *,
        content: bytes | None = None,
        query: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> M:
        with transport_errors(self.name, timeout):
            resp = await self._client.request(
                method,
                path,
                content=content,
                headers=_JSON if content is not None else None,
                params={**self._params, **(query or {})},
                timeout=timeout,
            )
        if resp.status_code >= 400:
            raise translate.upstream_error(
                resp.status_code, resp.content, self.name, retry_after_seconds(resp.headers)
            )
        translate.parse_body(out, resp.content, self.name)
        return out
