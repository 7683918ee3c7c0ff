"""bench/grpc_floor, the floor of the gRPC lines: a real process that answers the gateway's own
`CreateResponse` and `StreamResponse` over a real channel with the fast upstream's reply and events,
and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import orjson
import pytest

from bench import procs
from bench.fast_upstream import Replies
from responses_gateway import codec
from responses_gateway.v1 import (
    events_pb2,
    request_pb2,
    response_pb2,
    responses_service_pb2,
    responses_service_pb2_grpc,
)


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
        with pytest.raises(grpc.RpcError) as failed:  # the floor serves create and stream, nothing more
            stub.GetResponse(responses_service_pb2.GetResponseRequest(response_id="resp_1"), timeout=10)
        assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED


def _kinds(events: list[events_pb2.ResponseStreamEvent]) -> list[str]:
    return [str(e.WhichOneof("kind")) for e in events]


def test_the_floor_streams_the_upstreams_events_for_the_deltas_asked(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        default = list(stub.StreamResponse(request_pb2.CreateResponseRequest(model="bench-gpt"), timeout=10))
        asked = request_pb2.CreateResponseRequest(model="bench-gpt", metadata={"bench_deltas": "200"})
        long = [list(stub.StreamResponse(asked, timeout=10)) for _ in range(2)]
    for events, deltas in ((default, 20), (long[0], 200), (long[1], 200)):
        assert _kinds(events).count("response_output_text_delta") == deltas
        assert (
            len(events) == deltas + 8
        )  # created, in_progress, item and part added / done, text done, completed
        assert [e.sequence_number for e in events] == list(range(len(events)))
        assert events[-1].response_completed.response.status == response_pb2.RESPONSE_STATUS_COMPLETED
        assert events[-1].response_completed.response.usage.output_tokens == deltas
    want = [
        codec.loads(events_pb2.ResponseStreamEvent(), orjson.dumps(e))
        for e in Replies(200).stream_events(200)
    ]
    assert long[0] == long[1] == want  # the upstream's events as the gateway's codec reads them
