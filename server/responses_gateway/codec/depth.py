"""How deep a parsed message is nested, counted as protobuf counts it (values.py's MAX_DEPTH).

gRPC requests arrive already parsed, so protobuf's own limit (100 levels) is all they met; one 95
levels deep parses, but not once an event carries it two levels further down. The intake refuses
what the JSON codec would refuse, so both transports store only what can be read back.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from responses_gateway.codec.values import MAX_DEPTH
from responses_gateway.v1 import annotations_pb2 as ann

# How each message-typed field nests (scalar fields are never looked at): its values sit one level
# down, or two for a map's values (the entry, then the value); a map of scalars only has its entries.
_SINGLE, _REPEATED, _MAP_OF_MESSAGES, _MAP_OF_SCALARS = range(4)
_kinds: dict[FieldDescriptor, int | None] = {}


def _kind(fd: FieldDescriptor) -> int | None:
    kind = _kinds.get(fd, -1)
    if kind == -1:
        mt = fd.message_type
        if mt is None:
            kind = None
        elif mt.GetOptions().map_entry:
            kind = (
                _MAP_OF_MESSAGES if mt.fields_by_name["value"].message_type is not None else _MAP_OF_SCALARS
            )
        else:
            kind = _REPEATED if fd.is_repeated else _SINGLE
        _kinds[fd] = kind
    return kind


def _field_exceeds(fd: FieldDescriptor, value: Any, level: int, limit: int) -> bool:
    """Whether one set field of a message at `level` goes deeper than `limit`."""
    kind = _kind(fd)
    if kind is None:
        return False
    if kind == _SINGLE:
        return _exceeds(value, level + 1, limit)
    if kind == _REPEATED:
        return any(_exceeds(child, level + 1, limit) for child in value)
    if kind == _MAP_OF_MESSAGES:
        return any(_exceeds(child, level + 2, limit) for child in value.values())
    return level + 1 > limit


def _exceeds(msg: Message, level: int, limit: int) -> bool:
    if level > limit:
        return True
    # ListFields: only what is set (a union has dozens of arms, one of them set).
    return any(_field_exceeds(fd, value, level, limit) for fd, value in msg.ListFields())


def too_deep(msg: Message, size: int | None = None, limit: int = MAX_DEPTH) -> str | None:
    """The JSON name of the first top-level field nested deeper than `limit` levels (the root is level
    1), or None when the message fits. `size`: its wire size when known; every level costs at least
    two bytes (a tag and a length), so a small message cannot be too deep and is not walked."""
    if size is not None and size < 2 * limit:
        return None
    for fd, value in msg.ListFields():
        if _field_exceeds(fd, value, 1, limit):
            return fd.GetOptions().Extensions[ann.json_name] or fd.name
    return None
