"""google.protobuf.Value / Struct / ListValue <-> plain Python JSON values."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

# Doubles hold integers exactly up to 2**53; beyond that an integral float stays a float.
_MAX_EXACT_INT = 2**53

# protobuf's C runtime (upb) will not parse a message nested more than 100 levels deep, and every
# sub-message, map entry and Struct / Value / ListValue counts: a JSON object inside a Value is three
# levels (Value, Struct, map entry), an array two. JSON is refused when it would sit deeper than
# MAX_DEPTH (the root message is level 1), which leaves room for the messages that carry a decoded
# one further down (an event holds its Response two levels down, a list reply its items one), so
# whatever the gateway accepted can always be parsed again: from the store, by a gRPC client.
PROTOBUF_MAX_DEPTH = 100
MAX_DEPTH = PROTOBUF_MAX_DEPTH - 10
TOO_DEEP = f"The JSON is nested too deeply (protobuf keeps at most {MAX_DEPTH} levels)."


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
