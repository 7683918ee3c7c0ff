"""What `encode` writes for a field that is unset (the presence table in docs/contract.md), and the
repair that turns JSON read into a message into what `encode` gives back for it (codec/shadow.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

import orjson
from google.protobuf.descriptor import FieldDescriptor

from responses_gateway.v1 import annotations_pb2 as ann

MISSING: Final[Any] = object()


class Fresh:
    """A default that must be a new object each time it is emitted (a list, an object): the encoded
    JSON is the caller's to change."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


_NEW_LIST: Final[Any] = Fresh(list)
_NEW_DICT: Final[Any] = Fresh(dict)

INT_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_SFIXED32,
    }
)
FLOAT_TYPES = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})


def _json_default(fd: FieldDescriptor, literal: str) -> Any:
    try:
        value = orjson.loads(literal)
    except orjson.JSONDecodeError as e:  # a contract mistake: fail when the plan is built
        raise TypeError(f"{fd.full_name}: json_default is not JSON: {e}") from None
    if isinstance(value, dict | list):
        raw = orjson.dumps(value)
        return Fresh(lambda: orjson.loads(raw))
    return value


def fill(value: Any, default: Any) -> Any:
    """`value` with the keys of `default` it lacks (recursively into objects both have). `default` is
    the plan's own and never handed out: what is taken from it is copied, unless a scalar."""
    if type(value) is dict and type(default) is dict:
        for k, d in default.items():
            if k not in value:
                value[k] = _copy(d)
            else:
                fill(value[k], d)
    return value


def _copy(v: Any) -> Any:
    t = type(v)
    if t is dict:
        return {k: _copy(x) for k, x in v.items()}
    if t is list:
        return [_copy(x) for x in v]
    return v


def fill_template(fd: FieldDescriptor) -> dict[str, Any] | None:
    """A message field whose json_default is an object: the object whose keys a set value gets
    when it lacks them, so the object reads complete in this place (the message's own plan, shared
    with requests that must go upstream as sent, is unchanged). Parsed once; _fill copies from it."""
    literal = fd.GetOptions().Extensions[ann.json_default]
    if not literal or fd.type != FieldDescriptor.TYPE_MESSAGE or fd.is_repeated:
        return None
    default = _json_default(fd, literal)
    if type(default) is not Fresh:
        return None
    template: dict[str, Any] = default.make()
    return template


def emit_default(fd: FieldDescriptor) -> Any:
    """What an unset field is emitted as (see the presence table in docs/contract.md)."""
    opts = fd.GetOptions()
    literal = opts.Extensions[ann.json_default]
    if literal:
        return _json_default(fd, literal)
    if fd.is_repeated:
        if opts.Extensions[ann.omit_empty]:
            return MISSING
        return _NEW_DICT if is_map(fd) else _NEW_LIST
    if opts.Extensions[ann.nullable]:
        return None
    if fd.has_presence or fd.type == FieldDescriptor.TYPE_ENUM:
        return MISSING
    if fd.type == FieldDescriptor.TYPE_STRING:
        return ""
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return False
    if fd.type in INT_TYPES or fd.type in FLOAT_TYPES:
        return 0
    return MISSING


# --- repair: the JSON read, made into what encode gives back (codec/shadow.py) --------------------


class Repair:
    """While `thread` is set (to the decoding thread's id), each object decoded on that thread is
    also changed in place into the JSON `encode` gives for what was decoded from it, and `ok` turns
    False when that cannot be done. Other threads' decodes are left alone."""

    def __init__(self) -> None:
        self.thread = 0
        self.ok = True

    def active(self) -> bool:
        """Callers test `thread` first: the cheap test, false for every decode outside a shadow."""
        return self.thread == threading.get_ident()  # never 0


REPAIR: Final = Repair()


class RepairRule:
    """What `repair` needs of one field, typed, so the compiled loop reads it without a lookup by name
    (a plan's FieldPlan is not a type this module may know)."""

    __slots__ = ("default", "fill", "integer", "key", "omit_if_empty")

    def __init__(
        self, key: str, default: Any, omit_if_empty: bool, fill: dict[str, Any] | None, integer: bool
    ) -> None:
        self.key = key
        self.default = default
        self.omit_if_empty = omit_if_empty
        self.fill = fill
        self.integer = integer  # an integer field (or array of them): an integral 2.0 is written 2


def repair(rules: list[RepairRule], v: dict[str, Any]) -> None:
    """`v`, decoded into the fields of these rules, made into what their encoders give back (the
    rules of `encode_fields`): a null the field cannot hold becomes its default or goes, a key left
    out that is always written gets its default, an empty array of a field written only when set
    goes, an object with a json_default object gets the keys it lacks. Values are otherwise equal as
    JSON already: numbers may differ only as 1 and 1.0 do."""
    for rule in rules:
        key = rule.key
        x = v.get(key, MISSING)
        if x is None or x is MISSING:
            d = rule.default
            if d is MISSING:
                if x is None:
                    del v[key]
            elif d is not None or x is MISSING:
                v[key] = d.make() if type(d) is Fresh else d
        elif rule.omit_if_empty and (type(x) is list or type(x) is dict) and not x:
            del v[key]
        elif rule.integer:
            if type(x) is float:
                v[key] = int(x)
            elif type(x) is list:
                v[key] = [int(n) if type(n) is float else n for n in x]
        elif rule.fill is not None and type(x) is dict:
            fill(x, rule.fill)


def is_map(fd: FieldDescriptor) -> bool:
    mt = fd.message_type
    return mt is not None and mt.GetOptions().map_entry
