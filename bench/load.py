"""Load generation: a fixed number of requests at a fixed concurrency, timed one by one.

Each request yields (latency, time to first byte, events): latency is until the whole response (or the
whole stream) is read; TTFB is until the first body byte (REST) or the first message (gRPC). REST
bodies are read raw, not parsed, so the client's own cost stays small and the same for every target.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx

from responses_gateway import codec
from responses_gateway.v1 import events_pb2, request_pb2, responses_service_pb2_grpc

_COMPLETED_ARM = {
    tag: arm for arm, tag in codec.union_tags(events_pb2.ResponseStreamEvent.DESCRIPTOR).items()
}["response.completed"]
Call = Callable[[], Awaitable[tuple[float, float, int]]]


class BadResponse(Exception):
    """The target answered, but not with a completed response."""


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)  # seconds
    ttfbs: list[float] = field(default_factory=list)
    events: list[int] = field(default_factory=list)  # streamed events per response (0 for unary)
    errors: int = 0
    cpu: float = math.nan  # the gateway's CPU seconds (all threads) per request; NaN when not measured
    first_error: str = ""
    wall: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.wall if self.wall > 0 else 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


async def run(call: Call, requests: int, concurrency: int, budget: float = math.inf) -> Samples:
    """`requests` calls, `concurrency` at a time (each worker starts its next call when one ends); no
    new call starts after `budget` seconds, so a slow target cannot stretch the run without bound."""
    samples = Samples()
    left = requests
    deadline = time.perf_counter() + budget

    async def worker() -> None:
        nonlocal left
        while left > 0 and time.perf_counter() < deadline:
            left -= 1
            try:
                latency, ttfb, events = await call()
            except Exception as e:
                samples.errors += 1
                samples.first_error = samples.first_error or f"{type(e).__name__}: {e}"[:300]
                continue
            samples.latencies.append(latency)
            samples.ttfbs.append(ttfb)
            samples.events.append(events)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    samples.wall = time.perf_counter() - start
    return samples


def rest_call(client: httpx.AsyncClient, url: str, body: bytes, *, stream: bool) -> Call:
    """POST `body` to `url`; for a stream, counts SSE frames (without a trailing `[DONE]`)."""
    headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "*/*"}

    async def call() -> tuple[float, float, int]:
        start = time.perf_counter()
        ttfb = 0.0
        frames = 0
        tail = b""
        completed = False
        async with client.stream("POST", url, content=body, headers=headers) as resp:
            async for chunk in resp.aiter_raw():
                if not ttfb:
                    ttfb = time.perf_counter() - start
                if stream:
                    frames += (tail[-1:] + chunk).count(b"\n\n")
                    completed = completed or b"event: response.completed" in tail[-32:] + chunk
                tail = (tail + chunk)[-160:]
        latency = time.perf_counter() - start
        if resp.status_code != 200:
            raise BadResponse(f"HTTP {resp.status_code}: {tail.decode(errors='replace')}")
        if stream:
            if b"[DONE]" in tail:
                frames -= 1
            if not completed:
                raise BadResponse(f"stream without response.completed, ending {tail!r}")
        return latency, ttfb, frames

    return call


def grpc_call(
    stub: responses_service_pb2_grpc.ResponsesServiceAsyncStub,
    request: request_pb2.CreateResponseRequest,
    *,
    stream: bool,
) -> Call:
    """A unary call's TTFB is its latency (the reply is one message); a stream's is its first event."""

    async def unary() -> tuple[float, float, int]:
        start = time.perf_counter()
        response = await stub.CreateResponse(request)
        latency = time.perf_counter() - start
        if not response.id:
            raise BadResponse("response without an id")
        return latency, latency, 0

    async def streaming() -> tuple[float, float, int]:
        start = time.perf_counter()
        ttfb = 0.0
        events = 0
        last = None
        async for event in stub.StreamResponse(request):
            if not events:
                ttfb = time.perf_counter() - start
            events += 1
            last = event
        latency = time.perf_counter() - start
        if last is None or last.WhichOneof("kind") != _COMPLETED_ARM:
            raise BadResponse(f"stream ended with {last.WhichOneof('kind') if last else 'nothing'}")
        return latency, ttfb, events

    return streaming if stream else unary


def grpc_stub(target: str) -> tuple[grpc.aio.Channel, responses_service_pb2_grpc.ResponsesServiceAsyncStub]:
    channel = grpc.aio.insecure_channel(target)
    return channel, responses_service_pb2_grpc.ResponsesServiceStub(channel)


def http_client() -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=120)
    return httpx.AsyncClient(limits=limits, timeout=30.0)


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time of a process, all its threads, or of one of them (Linux /proc)."""
    stat = Path(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
