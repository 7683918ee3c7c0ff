"""The memo of whole JSON values (codec/values.py): a value seen before converts to exactly what the
walk gives, as fresh objects, with the same limits and errors, and the memo stays bounded."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from google.protobuf import struct_pb2

from responses_gateway import codec
from responses_gateway.codec import values
from responses_gateway.v1 import request_pb2, response_pb2

Create = request_pb2.CreateResponseRequest

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"q": {"type": "string"}, "n": {"type": "integer", "minimum": 1}},
    "required": ["q"],
    "additionalProperties": False,
}
TOOL = {"type": "function", "name": "look", "parameters": SCHEMA, "strict": True}
UNKNOWN = {"web_search": {"num_requests": 0}, "flags": [True, None, 2.5, "x", {}], "empty": {}}


def _reply(extra: dict[str, Any]) -> bytes:
    return orjson.dumps({"id": "resp_1", "object": "response", "status": "completed", "output": [], **extra})


def test_a_value_seen_again_converts_to_the_same_json() -> None:
    body = {"model": "m", "input": "hi", "tools": [TOOL, {**TOOL, "name": "other"}]}
    first = codec.to_json(codec.from_json(Create(), copy.deepcopy(body)))
    again = codec.to_json(codec.from_json(Create(), copy.deepcopy(body)))
    assert again == first
    assert again["tools"][0]["parameters"] == SCHEMA
    assert again["tools"][1]["parameters"] == SCHEMA


def test_unknown_fields_of_a_reply_survive_a_second_time() -> None:
    for _ in range(3):
        r = codec.loads(
            response_pb2.Response(), _reply({"tool_usage": UNKNOWN, "billing": {"payer": "developer"}})
        )
        out = codec.to_json(r)
        assert out["tool_usage"] == UNKNOWN
        assert out["billing"] == {"payer": "developer"}
        assert r.SerializeToString()  # a well-formed message, as the store keeps it


def test_what_a_hit_returns_is_the_callers_own() -> None:
    r = codec.loads(response_pb2.Response(), _reply({"tool_usage": UNKNOWN}))
    first = codec.to_json(r)
    first["tool_usage"]["web_search"]["num_requests"] = 99  # a caller changing what it got
    first["tool_usage"]["flags"].append("more")
    second = codec.to_json(r)
    assert second["tool_usage"] == UNKNOWN


def test_an_empty_object_or_array_from_the_memo_is_still_there() -> None:
    for _ in range(2):
        s = struct_pb2.Struct()
        values.set_struct(s, {})
        holder = struct_pb2.Value()
        values.set_value(holder, {"a": {}, "b": []})
        assert values.struct_json(s) == {}
        assert values.value_json(holder) == {"a": {}, "b": []}
    for _ in range(2):
        r = codec.from_json(Create(), {"model": "m", "input": "hi", "tools": [{**TOOL, "parameters": {}}]})
        assert codec.to_json(r)["tools"][0]["parameters"] == {}


def _nested(levels: int) -> Any:
    v: Any = 1
    for _ in range(levels):
        v = {"x": v}
    return v


def test_a_value_memoized_shallow_is_still_refused_where_it_would_be_too_deep() -> None:
    deep = _nested(20)  # 60 levels: a Value, a Struct and a map entry per object
    ok = struct_pb2.Value()
    values.set_value(ok, deep, 1)  # memoized at depth 1
    assert values.value_json(ok) == deep
    with pytest.raises(values.NestingTooDeep):
        values.set_value(struct_pb2.Value(), deep, values.MAX_DEPTH - 5)


def _outcome(convert: Any, py: Any) -> tuple[str, str]:
    target = struct_pb2.Value()
    try:
        convert(target, py)
    except (TypeError, ValueError, OverflowError) as e:
        return type(e).__name__, str(e)
    return "ok", target.SerializeToString().hex()


@pytest.mark.parametrize(
    "py",
    [{1: "x"}, {"n": 2**80}, {"n": 10**400}, {"o": object()}, [float("nan")], {"a": float("inf")}],
)
def test_what_json_cannot_spell_converts_or_fails_as_the_walk_does(py: Any) -> None:
    values.set_value(struct_pb2.Value(), [None])  # what orjson writes for [nan] and for [None] alike
    values.set_value(struct_pb2.Value(), {"a": None})
    walked = _outcome(values.py_to_value, py)
    assert _outcome(values.set_value, py) == walked
    assert _outcome(values.set_value, py) == walked  # and again, in case it was kept


def test_a_non_finite_number_is_not_kept_as_the_null_orjson_writes_for_it() -> None:
    v = struct_pb2.Value()
    values.set_value(v, [float("inf")])
    assert values.value_json(v) == [float("inf")]
    assert values.value_json(v) == [float("inf")]  # not read back from a memo as [None]


def test_a_wrong_type_is_still_refused_with_its_param() -> None:
    with pytest.raises(codec.CodecError) as e:
        codec.from_json(Create(), {"model": "m", "input": "hi", "tools": [{**TOOL, "parameters": "nope"}]})
    assert e.value.param == "tools[0].parameters"


def test_large_values_are_walked_and_not_kept() -> None:
    big = {"k": "x" * (values._MEMO_MAX_BYTES + 10)}
    kept = len(values._from_py_memo), len(values._to_py_memo)
    v = struct_pb2.Value()
    values.set_value(v, big)
    assert values.value_json(v) == big
    assert (len(values._from_py_memo), len(values._to_py_memo)) == kept


def test_the_memo_stays_bounded() -> None:
    for i in range(values._MEMO_ENTRIES * 3):
        v = struct_pb2.Value()
        values.set_value(v, {"i": i})
        assert values.value_json(v) == {"i": i}
        assert len(values._from_py_memo) <= values._MEMO_ENTRIES
        assert len(values._to_py_memo) <= values._MEMO_ENTRIES
