"""The one place that knows OpenAI's JSON spelling: proto messages <-> OpenAI JSON.

Driven by the descriptors and the contract's options (docs/contract.md); there is no per-message code.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar, cast

import orjson
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from responses_gateway.codec import native

native.choose()  # before the modules it may compile are imported (native.py)

from responses_gateway.codec.defaults import REPAIR  # noqa: E402
from responses_gateway.codec.depth import too_deep  # noqa: E402
from responses_gateway.codec.plans import CodecError, plan_for  # noqa: E402
from responses_gateway.codec.shadow import current as _shadows  # noqa: E402
from responses_gateway.codec.unions import union_tags  # noqa: E402

__all__ = ["CodecError", "dumps", "from_json", "json_of", "loads", "to_json", "too_deep", "union_tags"]

M = TypeVar("M", bound=Message)


def _descriptor(msg: Message) -> Descriptor:
    return cast(Descriptor, msg.DESCRIPTOR)  # the upb descriptor type is the same at run time


_TOO_DEEP = "The JSON is nested too deeply."


def to_json(msg: Message) -> Any:
    """The OpenAI JSON value (dict, list or scalar) of `msg`."""
    try:
        return plan_for(_descriptor(msg)).encode(msg)
    except RecursionError:
        raise CodecError(_TOO_DEEP) from None


def from_json(msg: M, data: Any, *, keep: bool = False) -> M:
    """Fill `msg` from an OpenAI JSON value; raises CodecError (with a `param` path) when it does not fit.
    `keep`: within `shadow.keeping()`, `data` (an object) is repaired in place and kept for `dumps` and
    `json_of` of this message (shadow.py)."""
    shadows = _shadows() if keep else None
    if shadows is None or type(data) is not dict:
        _decode(msg, data)
        return msg
    REPAIR.thread, REPAIR.ok = threading.get_ident(), True
    try:
        _decode(msg, data)
    finally:
        REPAIR.thread = 0
    if REPAIR.ok:
        shadows.keep(msg, data)
    return msg


def _decode(msg: Message, data: Any) -> None:
    try:
        plan_for(_descriptor(msg)).decode(msg, data, 1)
    except RecursionError:
        raise CodecError(_TOO_DEEP) from None


def json_of(msg: Message) -> Any:
    """`to_json(msg)`, or a copy of its kept JSON while it has one (shadow.py): the top object is the
    caller's to change, what is inside it is not."""
    shadows = _shadows()
    if shadows is not None:
        kept = shadows.json(msg)
        if kept is not None:
            return dict(kept)
    return to_json(msg)


def dumps(msg: Message) -> bytes:
    shadows = _shadows()
    if shadows is not None:
        kept = shadows.dumps(msg)
        if kept is not None:
            return kept
    return orjson.dumps(to_json(msg))


def loads(msg: M, raw: bytes | str, *, keep: bool = False) -> M:
    """`keep`: within `shadow.keeping()`, the JSON is kept for `dumps` of this message (shadow.py)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        # Neutral wording: loads() reads upstream payloads, which are not "your request".
        raise CodecError(f"The JSON could not be parsed: {e}") from None
    return from_json(msg, data, keep=keep)
