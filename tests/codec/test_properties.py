"""Property tests: instances of the spec's schemas survive the codec, modulo the documented normalizations.

Instances come from a strategy compiled from the spec's own JSON Schemas (tests/codec/_schemas.py; the
schemas are too big and recursive for hypothesis-jsonschema, see there). Open objects also get keys the spec
does not declare, so `extra_fields` is exercised at every level. Runs are derandomized: CI sees the same
examples every time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responses_gateway import codec
from responses_gateway.v1 import events_pb2, items_pb2, request_pb2, response_pb2, tools_pb2
from tests.codec._normalize import Kind, assert_same_modulo
from tests.codec._schemas import ANY_JSON, self_contained, strategy_for

# Every documented normalization (see _normalize.Kind); a change of any value is never tolerated.
TOLERATED = frozenset(Kind)

TARGETS: list[tuple[str, type[Message]]] = [
    ("CreateResponse", request_pb2.CreateResponseRequest),
    ("Response", response_pb2.Response),
    ("ResponseStreamEvent", events_pb2.ResponseStreamEvent),
    ("InputItem", items_pb2.Item),
    ("OutputItem", items_pb2.Item),
    ("Tool", tools_pb2.Tool),
]
STRATEGIES = {name: strategy_for(self_contained(name)) for name, _ in TARGETS}

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def decode(message_type: type[Message], data: Any) -> Message | None:
    """from_json, which may reject the value but only with a CodecError (None then)."""
    try:
        return codec.from_json(message_type(), data)
    except codec.CodecError:
        return None


def check_round_trip(message_type: type[Message], data: Any, msg: Message) -> None:
    out = codec.to_json(msg)
    assert_same_modulo(data, out, TOLERATED)
    assert codec.to_json(message_type.FromString(msg.SerializeToString())) == out


@pytest.mark.parametrize(("schema", "message_type"), TARGETS, ids=[t[0] for t in TARGETS])
def test_spec_instances_round_trip(schema: str, message_type: type[Message]) -> None:
    @SETTINGS
    @given(STRATEGIES[schema])
    def run(data: Any) -> None:
        try:
            msg = codec.from_json(message_type(), data)
        except codec.CodecError as e:
            pytest.fail(f"a valid {schema} was rejected: {e}")
        check_round_trip(message_type, data, msg)

    run()


def _paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


def _replace(value: Any, path: tuple[str | int, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    out = list(value)
    out[head] = _replace(out[head], rest, new)  # type: ignore[index]
    return out


@pytest.mark.parametrize(("schema", "message_type"), TARGETS[:3], ids=[t[0] for t in TARGETS[:3]])
def test_mutated_instances_round_trip_or_raise_codec_error(schema: str, message_type: type[Message]) -> None:
    """Any JSON anywhere: from_json raises nothing but CodecError, and what it accepts it gives back."""

    @SETTINGS
    @given(st.data())
    def run(data: st.DataObject) -> None:
        instance = data.draw(STRATEGIES[schema], label="instance")
        path = data.draw(st.sampled_from(list(_paths(instance))), label="path")
        mutated = _replace(instance, path, data.draw(ANY_JSON, label="new value"))
        msg = decode(message_type, mutated)
        if msg is not None:
            check_round_trip(message_type, mutated, msg)

    run()
