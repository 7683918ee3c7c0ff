"""The JSON a message was read from, kept beside it so that writing the message out again (to a REST
client, or to an OpenAI-shaped upstream) sends that JSON instead of encoding the message field by field.

A REST create's unary reply from an OpenAI-shaped upstream is read into the contract's messages
(the store, cost and the fold need them) and then written back out as JSON: the second walk costs
as much as the first. A REST client's request on its way to such an upstream is the same case the other
way round (`codec.json_of`). While a REST call keeps shadows (`keeping`, a context variable), `codec.loads`
or `codec.from_json` with `keep` decodes with `defaults.REPAIR` on, which turns the JSON read into what `encode` would
give back (docs/contract.md, "Shadows"), and keeps it with the message's serialized bytes.
`codec.dumps` (or `json_of`) of that same message object gives the kept JSON when the message's bytes are still
those: a change the domain makes without saying so (`set_number` says so) makes them differ, and
the message is encoded as always.

RESPONSES_GATEWAY_CHECK_SHADOWS=1 (the test suite sets it) also encodes the message each time a
shadow is sent and raises ShadowMismatch unless the two are the same JSON.
"""

from __future__ import annotations

import os
from contextvars import ContextVar, Token
from typing import Any

import orjson
from google.protobuf.message import Message

from responses_gateway.codec.plans import plan_for
from responses_gateway.codec.values import number_to_json

CHECK = os.environ.get("RESPONSES_GATEWAY_CHECK_SHADOWS", "") not in ("", "0")


class ShadowMismatch(AssertionError):
    """A kept JSON that is not what encoding its message gives (only raised when CHECK is on)."""


class _Shadow:
    __slots__ = ("json", "message", "wire")

    def __init__(self, message: Message, json: dict[str, Any], wire: bytes) -> None:
        self.message, self.json, self.wire = message, json, wire


class Shadows:
    """The shadows of one call: a few at most (one per upstream attempt)."""

    __slots__ = ("kept",)

    def __init__(self) -> None:
        self.kept: list[_Shadow] = []

    def keep(self, message: Message, json: dict[str, Any]) -> None:
        self.kept.append(_Shadow(message, json, message.SerializeToString(deterministic=True)))

    def find(self, message: Message) -> _Shadow | None:
        for shadow in self.kept:
            if shadow.message is message:
                return shadow
        return None

    def json(self, message: Message) -> dict[str, Any] | None:
        """The kept JSON of `message`, while the message is as it was kept (else None); not to be changed."""
        shadow = self.find(message)
        if shadow is None:
            return None
        if message.SerializeToString(deterministic=True) != shadow.wire:
            self.kept.remove(shadow)
            return None
        if CHECK:
            _check(shadow.json, plan_for(message.DESCRIPTOR).encode(message), "")  # type: ignore[arg-type]
        return shadow.json

    def dumps(self, message: Message) -> bytes | None:
        """The kept JSON of `message` as it is now, or None."""
        json = self.json(message)
        return None if json is None else orjson.dumps(json)


_current: ContextVar[Shadows | None] = ContextVar("codec_shadows", default=None)


def current() -> Shadows | None:
    return _current.get()


class keeping:
    """`with keeping():` the messages `codec.loads(..., keep=True)` reads meanwhile keep their JSON."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token: Token[Shadows | None] = _current.set(Shadows())

    def __exit__(self, *_: object) -> None:
        _current.reset(self._token)


def set_number(message: Message, path: tuple[str, ...], value: float) -> None:
    """Say that `message` now holds `value` at `path` (JSON keys; an `extra_fields` key is one, as it
    is in the JSON): its shadow, if it has one, follows. A path its JSON lacks drops the shadow."""
    shadows = _current.get()
    shadow = shadows.find(message) if shadows is not None else None
    if shadows is None or shadow is None:
        return
    node: Any = shadow.json
    for key in path[:-1]:
        node = node.get(key) if type(node) is dict else None
    if type(node) is not dict:
        shadows.kept.remove(shadow)
        return
    node[path[-1]] = number_to_json(value)
    shadow.wire = message.SerializeToString(deterministic=True)


def _check(kept: Any, encoded: Any, path: str) -> None:
    """Raise unless the two are the same JSON (a number the same number, as 1 and 1.0 are)."""
    if type(kept) is dict and type(encoded) is dict:
        if kept.keys() != encoded.keys():
            raise ShadowMismatch(f"{path or '/'}: keys {sorted(kept)} kept, {sorted(encoded)} encoded")
        for k, x in kept.items():
            _check(x, encoded[k], f"{path}/{k}")
    elif type(kept) is list and type(encoded) is list:
        if len(kept) != len(encoded):
            raise ShadowMismatch(f"{path}: {len(kept)} items kept, {len(encoded)} encoded")
        for i, (x, y) in enumerate(zip(kept, encoded, strict=True)):
            _check(x, y, f"{path}/{i}")
    elif type(kept) in (int, float) and type(encoded) in (int, float):
        if float(kept) != float(encoded):
            raise ShadowMismatch(f"{path}: {kept!r} kept, {encoded!r} encoded")
    elif type(kept) is not type(encoded) or kept != encoded:
        raise ShadowMismatch(f"{path}: {kept!r} kept, {encoded!r} encoded")
