"""A scripted provider for domain tests: registered through the provider registry behind a real
config, it plays, call by call, scripts of events (built as an adapter builds them), pauses, and
failures before or after the first event. Nothing leaves the process.

    provider = ScriptedProvider()
    gateway.gw.providers.install("scripted", provider)   # the deployment's model_info.id
    provider.play(text_script(["Hel", "lo"], pause=0.01), refused(Reason.RATE_LIMITED))
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from responses_gateway import codec
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.base import ProviderCall, UpstreamStream
from responses_gateway.providers.stream_builder import StreamBuilder
from responses_gateway.v1 import events_pb2, response_pb2
from responses_gateway.v1 import responses_service_pb2 as rs

Event = events_pb2.ResponseStreamEvent
# A step: an event to send, a pause (seconds), a failure to raise there, or an event to wait on.
Step = Event | float | GatewayError | asyncio.Event
OPENAI_TRANSCRIPTS = Path(__file__).resolve().parent.parent / "transcripts" / "openai"


@dataclass
class Script:
    steps: list[Step] = field(default_factory=list)
    refuse: GatewayError | None = None  # raised by open(): the request never goes out


def text_script(
    words: list[str],
    *,
    pause: float = 0.0,
    fail_after: int | None = None,
    hold: asyncio.Event | None = None,
    input_tokens: int = 3,
) -> Script:
    """An assistant message streamed word by word, `pause` seconds before each delta; with
    `fail_after`, the upstream breaks off after that many deltas; with `hold`, it waits for the event
    before its first delta."""
    builder = StreamBuilder()
    steps: list[Step] = [*builder.start()]
    item_id, opened = builder.open_text()
    steps += opened
    if hold is not None:
        steps.append(hold)
    for n, word in enumerate(words):
        if fail_after is not None and n == fail_after:
            steps.append(GatewayError(Reason.UPSTREAM_UNAVAILABLE, "scripted: the upstream broke off"))
            return Script(steps)
        if pause:
            steps.append(pause)
        steps.append(builder.text_delta(item_id, word))
    steps += builder.finish(response_pb2.Usage(input_tokens=input_tokens, output_tokens=len(words)))
    return Script(steps)


def refused(reason: Reason, message: str = "scripted refusal") -> Script:
    """The upstream answers with an error status: nothing streamed, the router may try elsewhere."""
    return Script(refuse=GatewayError(reason, message))


def openai_script(name: str = "text", *, pause: float = 0.0) -> Script:
    """A recorded OpenAI Responses stream (tests/transcripts/openai), events as the upstream sent them:
    its own ids, indices and sequence numbers, as a native upstream's."""
    doc: dict[str, Any] = json.loads((OPENAI_TRANSCRIPTS / f"{name}.json").read_text())
    steps: list[Step] = []
    for payload in doc["stream"]:
        if pause:
            steps.append(pause)
        steps.append(codec.from_json(Event(), copy.deepcopy(payload)))
    return Script(steps)


class ScriptedProvider:
    """Plays the scripts given to `play`, one per call, then `default` (a short text answer)."""

    def __init__(self) -> None:
        self.scripts: deque[Script] = deque()
        self.calls: list[ProviderCall] = []
        self.default = text_script(["Hello", " there"])
        self.closed = 0  # streams closed before their end (the gateway hung up)

    def play(self, *scripts: Script) -> None:
        self.scripts.extend(scripts)

    def open(self, call: ProviderCall) -> UpstreamStream:
        self.calls.append(call)
        script = self.scripts.popleft() if self.scripts else self.default
        if script.refuse is not None:
            raise script.refuse
        return UpstreamStream(self._events(script))

    async def _events(self, script: Script) -> AsyncGenerator[Event, None]:
        finished = False
        try:
            for step in script.steps:
                if isinstance(step, float | int):
                    await asyncio.sleep(step)
                elif isinstance(step, asyncio.Event):
                    await step.wait()
                elif isinstance(step, GatewayError):
                    raise step
                else:
                    out = Event()
                    out.CopyFrom(step)
                    yield out
            finished = True
        finally:
            if not finished:
                self.closed += 1

    async def aclose(self) -> None:
        return None


class NativeScriptedProvider(ScriptedProvider):
    """The same, for an upstream that keeps its own responses (as OpenAI's does): the gateway relays
    its ids and indices."""

    async def retrieve(self, response_id: str) -> response_pb2.Response:
        raise GatewayError(Reason.NOT_FOUND, "scripted: no such response")

    async def delete(self, response_id: str) -> rs.DeleteResponseResponse:
        raise GatewayError(Reason.NOT_FOUND, "scripted: no such response")

    async def cancel(self, response_id: str) -> response_pb2.Response:
        raise GatewayError(Reason.NOT_FOUND, "scripted: no such response")

    async def list_input_items(self, request: rs.ListInputItemsRequest) -> rs.ListInputItemsResponse:
        raise GatewayError(Reason.NOT_FOUND, "scripted: no such response")
