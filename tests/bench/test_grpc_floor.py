"""bench/grpc_floor, the floor of the saturated gRPC line: a real process that answers the gateway's
own `CreateResponse` over a real channel with the fast upstream's reply, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from bench import procs
from bench.fast_upstream import Replies
from responses_gateway import codec
from responses_gateway.v1 import request_pb2, response_pb2, responses_service_pb2_grpc


@pytest.fixture
def port(tmp_path: Path) -> Iterator[int]:
    floor = procs.start_grpc_floor(None, tmp_path)
    try:
        yield floor.ports[0]
    finally:
        procs.stop(floor)


def test_the_floor_answers_create_with_the_upstreams_reply(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        request = request_pb2.CreateResponseRequest(model="bench-gpt")
        replies = [stub.CreateResponse(request, timeout=10) for _ in range(3)]
        want = codec.loads(response_pb2.Response(), Replies(0).unary_template)
        for reply in replies:
            assert reply.status == response_pb2.RESPONSE_STATUS_COMPLETED
            assert reply == want  # the fast upstream's reply, as the gateway's codec reads it
            assert (
                reply.output[0].message.content.parts.parts[0].output_text.text
                == "Hello! How can I help you today?"
            )
        with pytest.raises(grpc.RpcError) as failed:  # the floor serves CreateResponse and nothing more
            list(stub.StreamResponse(request, timeout=10))
        assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED
