"""google.protobuf.Value / Struct / ListValue <-> plain Python JSON values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson
from google.protobuf import struct_pb2
from google.protobuf.message import Message

# Doubles hold integers exactly up to 2**53; beyond that an integral float stays a float.
_MAX_EXACT_INT: Final = 2**53

# protobuf's C runtime (upb) will not parse a message nested more than 100 levels deep, and every
# sub-message, map entry and Struct / Value / ListValue counts: a JSON object inside a Value is three
# levels (Value, Struct, map entry), an array two. JSON is refused when it would sit deeper than
# MAX_DEPTH (the root message is level 1), which leaves room for the messages that carry a decoded
# one further down (an event holds its Response two levels down, a list reply its items one), so
# whatever the gateway accepted can always be parsed again: from the store, by a gRPC client.
PROTOBUF_MAX_DEPTH: Final = 100
MAX_DEPTH: Final = PROTOBUF_MAX_DEPTH - 10
TOO_DEEP: Final = f"The JSON is nested too deeply (protobuf keeps at most {MAX_DEPTH} levels)."


class NestingTooDeep(ValueError):
    def __init__(self) -> None:
        super().__init__(TOO_DEEP)


def number_to_json(f: float) -> int | float:
    """Emit integral doubles as JSON integers, as OpenAI does (`created_at`, token counts in Structs)."""
    if f.is_integer() and -_MAX_EXACT_INT <= f <= _MAX_EXACT_INT:
        return int(f)
    return f


def value_to_py(v: struct_pb2.Value) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return v.string_value
    if kind == "number_value":
        return number_to_json(v.number_value)
    if kind == "struct_value":
        return struct_to_py(v.struct_value)
    if kind == "bool_value":
        return v.bool_value
    if kind == "list_value":
        return [value_to_py(x) for x in v.list_value.values]
    return None


def struct_to_py(s: struct_pb2.Struct) -> dict[str, Any]:
    # By key, not `.items()`: the map's own iteration is native, the mapping ABC's items view is not.
    fields = s.fields
    return {k: value_to_py(fields[k]) for k in fields}


def list_to_py(lv: struct_pb2.ListValue) -> list[Any]:
    return [value_to_py(x) for x in lv.values]


def py_to_value(target: struct_pb2.Value, py: Any, depth: int = 1) -> None:
    """Write a JSON value into `target` (a Value inside some message), `depth` levels down."""
    if depth > MAX_DEPTH:
        raise NestingTooDeep()
    t = type(py)  # the exact types a JSON parser makes first; their subclasses after
    if t is str:
        target.string_value = py
    elif t is int or t is float:
        target.number_value = py
    elif t is dict:
        py_to_struct(target.struct_value, py, depth + 1)
    elif py is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif t is bool:  # bool has no subclasses: not checked again below
        target.bool_value = py
    elif t is list:
        py_to_list(target.list_value, py, depth + 1)
    elif isinstance(py, str):
        target.string_value = py
    elif isinstance(py, int | float):
        target.number_value = py
    elif isinstance(py, dict):
        py_to_struct(target.struct_value, py, depth + 1)
    elif isinstance(py, list):
        py_to_list(target.list_value, py, depth + 1)
    else:
        raise TypeError(f"not a JSON value: {type(py).__name__}")


def py_to_struct(target: struct_pb2.Struct, py: dict[str, Any], depth: int = 1) -> None:
    if depth > MAX_DEPTH:
        raise NestingTooDeep()
    target.SetInParent()
    fields = target.fields
    for k, x in py.items():
        if not isinstance(k, str):
            raise TypeError("object keys must be strings")
        py_to_value(fields[k], x, depth + 2)  # the map entry, then the Value


def py_to_list(target: struct_pb2.ListValue, py: list[Any], depth: int = 1) -> None:
    if depth > MAX_DEPTH:
        raise NestingTooDeep()
    target.SetInParent()
    for x in py:
        py_to_value(target.values.add(), x, depth + 1)


# Whole values, memoized: the same objects and arrays come again and again (the fields of an upstream
# reply the contract does not model yet, such as OpenAI's `tool_usage` and `billing`; a client's tool
# schemas, sent with every request), and walking a Struct through upb costs ~1 µs per member while a
# hit costs one serialization, one lookup and one orjson call. Keyed by the whole value (its wire
# bytes, or its JSON and depth), so a hit is exactly what the walk would give; a hit reads back fresh
# objects, so callers may change what they get. Large values are walked every time, and the memo is
# emptied when full: a bounded few MB whatever the traffic.
_MEMO_MAX_BYTES: Final = 4096
_MEMO_ENTRIES: Final = 512
_to_py_memo: dict[tuple[int, bytes], bytes] = {}
_from_py_memo: dict[tuple[int, int, bytes], bytes] = {}
_VALUE, _STRUCT, _LIST = 0, 1, 2


def _memo_to_py(kind: int, msg: Message, walk: Callable[[Any], Any]) -> Any:
    wire = msg.SerializeToString()
    if len(wire) > _MEMO_MAX_BYTES:
        return walk(msg)
    key = (kind, wire)
    hit = _to_py_memo.get(key)
    if hit is not None:
        return orjson.loads(hit)
    py = walk(msg)
    text = orjson.dumps(py)
    if _not_json(text, py):
        return py
    if len(_to_py_memo) >= _MEMO_ENTRIES:
        _to_py_memo.clear()
    _to_py_memo[key] = text
    return py


def _not_json(text: bytes, py: Any) -> bool:
    """Whether `py` holds a NaN or an infinity, which JSON cannot spell and orjson writes as null (so
    its text is another value's): such a value is neither kept nor looked up."""
    return b"null" in text and orjson.loads(text) != py


def _memo_from_py(
    kind: int, target: Message, py: Any, depth: int, walk: Callable[[Any, Any, int], None]
) -> None:
    try:
        text = orjson.dumps(py)
    except orjson.JSONEncodeError:  # not JSON (a key that is not a string, a huge int): the walk says so
        walk(target, py, depth)
        return
    if len(text) > _MEMO_MAX_BYTES or _not_json(text, py):
        walk(target, py, depth)
        return
    key = (kind, depth, text)
    hit = _from_py_memo.get(key)
    if hit is not None:
        target.SetInParent()  # an empty object or array is still present
        target.MergeFromString(hit)
        return
    walk(target, py, depth)  # raises as before (too deep, not JSON); nothing is kept then
    if len(_from_py_memo) >= _MEMO_ENTRIES:
        _from_py_memo.clear()
    _from_py_memo[key] = target.SerializeToString()


def value_json(v: struct_pb2.Value) -> Any:
    """`value_to_py`, memoized for objects and arrays."""
    kind = v.WhichOneof("kind")
    if kind == "struct_value" or kind == "list_value":
        return _memo_to_py(_VALUE, v, value_to_py)
    return value_to_py(v)


def struct_json(s: struct_pb2.Struct) -> dict[str, Any]:
    """`struct_to_py`, memoized."""
    out: dict[str, Any] = _memo_to_py(_STRUCT, s, struct_to_py)
    return out


def list_json(lv: struct_pb2.ListValue) -> list[Any]:
    """`list_to_py`, memoized."""
    out: list[Any] = _memo_to_py(_LIST, lv, list_to_py)
    return out


def set_value(target: struct_pb2.Value, py: Any, depth: int = 1) -> None:
    """`py_to_value`, memoized for objects and arrays."""
    t = type(py)
    if t is dict or t is list:
        _memo_from_py(_VALUE, target, py, depth, py_to_value)
    else:
        py_to_value(target, py, depth)


def set_struct(target: struct_pb2.Struct, py: dict[str, Any], depth: int = 1) -> None:
    """`py_to_struct`, memoized."""
    _memo_from_py(_STRUCT, target, py, depth, py_to_struct)


def set_list(target: struct_pb2.ListValue, py: list[Any], depth: int = 1) -> None:
    """`py_to_list`, memoized."""
    _memo_from_py(_LIST, target, py, depth, py_to_list)
