"""How deep a parsed message is nested, counted as protobuf counts it (values.py's MAX_DEPTH).

gRPC requests arrive already parsed, so protobuf's own limit (100 levels) is all they met; one 95
levels deep parses, but not once an event carries it two levels further down. The intake refuses
what the JSON codec would refuse, so both transports store only what can be read back.
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from responses_gateway.codec.values import MAX_DEPTH
from responses_gateway.v1 import annotations_pb2 as ann

# Per message type: its message-typed fields as (field, levels its values sit below it, value is a message).
_Nested = list[tuple[FieldDescriptor, int, bool]]
_nested: dict[str, _Nested] = {}


def _nested_fields(desc: Descriptor) -> _Nested:
    found = _nested.get(desc.full_name)
    if found is None:
        found = []
        for fd in desc.fields:
            mt = fd.message_type
            if mt is None:
                continue
            if mt.GetOptions().map_entry:
                value = mt.fields_by_name["value"]
                found.append((fd, 2, value.message_type is not None))  # the entry, then its value
            else:
                found.append((fd, 1, True))
        _nested[desc.full_name] = found
    return found


def _field_exceeds(
    msg: Message, fd: FieldDescriptor, down: int, is_message: bool, level: int, limit: int
) -> bool:
    """Whether the values of one message-typed field of `msg` (at `level`) go deeper than `limit`."""
    if fd.is_repeated:
        values = getattr(msg, fd.name)
        if not values:
            return False
        if not is_message:  # a map of scalars: its entries are one level down, and nothing below
            return level + 1 > limit
        children = values.values() if down == 2 else values
        return any(_exceeds(child, level + down, limit) for child in children)
    return msg.HasField(fd.name) and _exceeds(getattr(msg, fd.name), level + 1, limit)


def _exceeds(msg: Message, level: int, limit: int) -> bool:
    if level > limit:
        return True
    return any(
        _field_exceeds(msg, fd, down, is_message, level, limit)
        for fd, down, is_message in _nested_fields(msg.DESCRIPTOR)  # type: ignore[arg-type]
    )


def too_deep(msg: Message, size: int | None = None, limit: int = MAX_DEPTH) -> str | None:
    """The JSON name of the first top-level field nested deeper than `limit` levels (the root is level
    1), or None when the message fits. `size`: its wire size when known; every level costs at least
    two bytes (a tag and a length), so a small message cannot be too deep and is not walked."""
    if size is not None and size < 2 * limit:
        return None
    for fd, down, is_message in _nested_fields(msg.DESCRIPTOR):  # type: ignore[arg-type]
        if _field_exceeds(msg, fd, down, is_message, 1, limit):
            return fd.GetOptions().Extensions[ann.json_name] or fd.name
    return None
