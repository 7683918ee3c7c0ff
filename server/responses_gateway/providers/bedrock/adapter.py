"""I/O shell of the Bedrock adapter: `POST {api_base}/model/{modelId}/converse-stream`, SigV4-signed
(or with a Bedrock API key as a Bearer token), its `vnd.amazon.eventstream` body decoded by botocore's
parser and relayed message by message (unary is the fold)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import orjson
from botocore.eventstream import EventStreamBuffer, ParserError

from responses_gateway.config.bedrock import DEFAULT_REGION, BedrockSettings
from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.base import ProviderCall, UpstreamStream
from responses_gateway.providers.bedrock.auth import AwsSigner
from responses_gateway.providers.bedrock.request import converse_request
from responses_gateway.providers.bedrock.stream import BedrockStream, error_name, error_of
from responses_gateway.providers.features import Unsupported
from responses_gateway.providers.http import (
    Headers,
    make_client,
    path_segment,
    retry_after_seconds,
    transport_errors,
)
from responses_gateway.providers.tool_mapping import tool_map
from responses_gateway.v1 import events_pb2

EVENT_STREAM = "application/vnd.amazon.eventstream"


class BedrockProvider:
    def __init__(self, deployment: ResolvedDeployment) -> None:
        self.deployment = deployment
        self.name = f"Bedrock ({deployment.upstream_model})"
        settings = deployment.bedrock or BedrockSettings(region=DEFAULT_REGION)
        self.settings = settings
        # The headers the signature covers go with each request (a pooled client's fixed headers
        # would be sent besides them, twice); only the deployment's own extra headers stay fixed.
        self._headers = {"content-type": "application/json", "accept": EVENT_STREAM}
        self._signer: AwsSigner | None = None
        if deployment.api_key:
            self._headers["authorization"] = f"Bearer {deployment.api_key}"
        else:
            self._signer = AwsSigner(settings, self.name)
        self._client = make_client(deployment, dict(deployment.headers))
        # An ARN or a cross-region profile id is one path segment, percent-encoded whole.
        self._path = f"/model/{path_segment(deployment.upstream_model)}/converse-stream"
        self._url = (deployment.api_base or "").rstrip("/") + self._path

    async def aclose(self) -> None:
        await self._client.aclose()

    def _error(self, status: int, raw: bytes, headers: Headers) -> GatewayError:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        message = body.get("message") or body.get("Message") if isinstance(body, dict) else None
        if message is None:
            message = raw[:200].decode("utf-8", "replace") or "(no body)"
        name = error_name(headers.get("x-amzn-errortype"), body)
        return error_of(name, message, self.name, status, retry_after_seconds(headers))

    def open(self, call: ProviderCall) -> UpstreamStream:
        unsupported = Unsupported(self.name, drop=self.deployment.drop_params)
        tools = tool_map(call.request, unsupported)
        body = converse_request(
            call.request, self.deployment.upstream_model, unsupported, tools, self.settings.guardrail
        )
        translator = BedrockStream(self.name, tools)
        return UpstreamStream(self._events(orjson.dumps(body), translator, call.timeout), unsupported.dropped)

    async def _events(
        self, body: bytes, translator: BedrockStream, timeout: float | None
    ) -> AsyncGenerator[events_pb2.ResponseStreamEvent, None]:
        headers = self._headers
        if self._signer is not None:
            headers = await self._signer.sign(self._url, body, headers)
        with transport_errors(self.name, timeout):
            post = self._client.stream("POST", self._path, content=body, headers=headers, timeout=timeout)
            async with post as resp:
                if resp.status_code >= 400:
                    raise self._error(resp.status_code, await resp.aread(), resp.headers)
                for event in translator.start():
                    yield event
                frames = EventStreamBuffer()
                async for chunk in resp.aiter_raw():
                    frames.add_data(chunk)
                    try:
                        messages = list(frames)
                    except ParserError as e:
                        raise GatewayError(
                            Reason.UPSTREAM_ERROR, f"{self.name} sent a malformed event-stream message: {e}"
                        ) from e
                    for message in messages:
                        for event in translator.message(message.headers, message.payload):
                            yield event
        for event in translator.end():
            yield event
