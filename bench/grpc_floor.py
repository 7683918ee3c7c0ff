"""The floor of the saturated gRPC line: a bare grpc.aio server of the same `CreateResponse`.

It answers every call with one canned `Response` (the fast upstream's unary reply, decoded once at
start), with what the gateway's gRPC transport also sets up around grpc.aio and nothing else: uvloop,
grpcio's threads lowered to SCHED_IDLE (transport/grpc/threads.py), the garbage collector settled
(gc_policy.py). No interceptor, domain, upstream call or store. Its CPU per call at saturation is
what grpcio itself costs on the machine; issue 13's gRPC target (<= 550 µs) is read against it.

Run alone: `python -m bench.grpc_floor --port 0` (prints `listening on HOST:PORT`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import grpc
import uvloop

from bench.fast_upstream import Replies
from responses_gateway import codec, gc_policy
from responses_gateway.transport.grpc.threads import IoThreads
from responses_gateway.v1 import request_pb2, response_pb2, responses_service_pb2


def canned() -> response_pb2.Response:
    return codec.loads(response_pb2.Response(), Replies(0).unary_template)


async def _create(
    request: request_pb2.CreateResponseRequest, context: grpc.aio.ServicerContext[object, object]
) -> response_pb2.Response:
    return _REPLY


_REPLY = canned()
_SERVICE = responses_service_pb2.DESCRIPTOR.services_by_name["ResponsesService"].full_name


def handler() -> grpc.GenericRpcHandler[object, object]:
    """`CreateResponse` only, with the generated code's (de)serializers."""
    create = grpc.unary_unary_rpc_method_handler(
        _create,
        request_deserializer=request_pb2.CreateResponseRequest.FromString,
        response_serializer=response_pb2.Response.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(_SERVICE, {"CreateResponse": create})


async def serve(port: int) -> None:
    server = grpc.aio.server(handlers=[handler()])
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
    args = p.parse_args()
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        r.run(serve(args.port))


if __name__ == "__main__":
    main()
