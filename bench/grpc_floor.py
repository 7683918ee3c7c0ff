"""The floor of the gRPC lines: a bare grpc.aio server of the same `CreateResponse` and `StreamResponse`.

It answers every create with one canned `Response` (the fast upstream's unary reply, decoded once at
start), and every stream with the fast upstream's events for as many deltas as the request's
`metadata.bench_deltas` asks (`--deltas` without it), decoded once per count, with what the gateway's gRPC transport also sets up around grpc.aio and nothing else: uvloop,
grpcio's threads lowered to SCHED_IDLE (transport/grpc/threads.py), the garbage collector settled
(gc_policy.py). No interceptor, domain, upstream call or store. Its CPU per call at saturation is
what grpcio itself costs on the machine; issue 13's gRPC target (<= 550 µs) is read against it. Its
CPU per streamed message is grpcio's own part of the gateway's gRPC cost per event (target <= 40 µs).

Run alone: `python -m bench.grpc_floor --port 0` (prints `listening on HOST:PORT`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import orjson
import uvloop

from bench.fast_upstream import Replies
from responses_gateway import codec, gc_policy
from responses_gateway.transport.grpc.threads import IoThreads
from responses_gateway.v1 import events_pb2, request_pb2, response_pb2, responses_service_pb2


def canned() -> response_pb2.Response:
    return codec.loads(response_pb2.Response(), Replies(0).unary_template)


async def _create(
    request: request_pb2.CreateResponseRequest, context: grpc.aio.ServicerContext[object, object]
) -> response_pb2.Response:
    return _REPLY


def canned_stream(deltas: int) -> list[events_pb2.ResponseStreamEvent]:
    return [
        codec.loads(events_pb2.ResponseStreamEvent(), orjson.dumps(event))
        for event in Replies(deltas).stream_events(deltas)
    ]


class Streams:
    """The canned streams by their count of deltas, each decoded on its first request."""

    def __init__(self, default_deltas: int) -> None:
        self.default_deltas = default_deltas
        self._streams: dict[int, list[events_pb2.ResponseStreamEvent]] = {}

    async def stream(
        self, request: request_pb2.CreateResponseRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[events_pb2.ResponseStreamEvent]:
        asked = request.metadata.get("bench_deltas")
        deltas = int(asked) if asked else self.default_deltas
        events = self._streams.get(deltas)
        if events is None:
            events = self._streams[deltas] = canned_stream(deltas)
        for event in events:
            yield event


_REPLY = canned()
_SERVICE = responses_service_pb2.DESCRIPTOR.services_by_name["ResponsesService"].full_name


def handler(default_deltas: int) -> grpc.GenericRpcHandler[object, object]:
    """`CreateResponse` and `StreamResponse` only, with the generated code's (de)serializers."""
    create = grpc.unary_unary_rpc_method_handler(
        _create,
        request_deserializer=request_pb2.CreateResponseRequest.FromString,
        response_serializer=response_pb2.Response.SerializeToString,
    )
    stream = grpc.unary_stream_rpc_method_handler(
        Streams(default_deltas).stream,
        request_deserializer=request_pb2.CreateResponseRequest.FromString,
        response_serializer=events_pb2.ResponseStreamEvent.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(
        _SERVICE, {"CreateResponse": create, "StreamResponse": stream}
    )


async def serve(port: int, default_deltas: int) -> None:
    server = grpc.aio.server(handlers=[handler(default_deltas)])
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    threads = IoThreads()
    threads.start()
    gc_policy.settle()
    print(f"listening on 127.0.0.1:{bound}", flush=True)
    try:
        await server.wait_for_termination()
    finally:
        await threads.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.grpc_floor", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--deltas", type=int, default=20, help="deltas of a stream whose request asks for none")
    args = p.parse_args()
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        r.run(serve(args.port, args.deltas))


if __name__ == "__main__":
    main()
