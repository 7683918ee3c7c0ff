"""LiteLLM's `mock_response` switch: a canned answer through the same code path, streaming too."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator

from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.providers.base import ProviderCall, UpstreamStream
from responses_gateway.providers.stream_builder import StreamBuilder
from responses_gateway.v1 import events_pb2, response_pb2

_WORDS = re.compile(r"\S+\s*|\s+")


def mock_usage(text: str) -> response_pb2.Usage:
    n = max(1, len(text.split()))
    return response_pb2.Usage(input_tokens=1, output_tokens=n, total_tokens=n + 1)


class MockProvider:
    """Streams `mock_response` word by word as an assistant message; nothing leaves the process."""

    def __init__(self, deployment: ResolvedDeployment, text: str | None = None) -> None:
        self.text = text if text is not None else deployment.mock_response or ""

    async def aclose(self) -> None:
        return None

    def open(self, call: ProviderCall) -> UpstreamStream:
        return UpstreamStream(self._events())

    async def _events(self) -> AsyncGenerator[events_pb2.ResponseStreamEvent, None]:
        builder = StreamBuilder()
        for event in builder.start():
            yield event
        item_id, events = builder.open_text()
        for event in events:
            yield event
        for word in _WORDS.findall(self.text):
            yield builder.text_delta(item_id, word)
        for event in builder.finish(mock_usage(self.text)):
            yield event
