"""Comparing a JSON value with its codec round trip, modulo the normalizations docs/contract.md documents.

`diff(original, encoded)` walks both values and classifies every difference. A difference is either one of the
documented `Kind`s below (returned, so a test can assert exactly which ones it accepts) or a mismatch (data
changed or lost), which no test tolerates.

JSON has one number type: an integral double re-emitted as an integer (`1.0` → `1`, contract: "`number` →
`double` (emitted as a JSON integer when integral)") is equal, not a normalization. Booleans never equal numbers.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any


class Kind(enum.Enum):
    # "A JSON `null` read for a field means unset" + an unset `optional` / message field is omitted.
    DROPPED_NULL = "null for a non-nullable field is dropped"
    # null means unset, and an unset plain scalar / repeated / map field is emitted with its default
    # ("metadata": null → {}; "outputs": null → []).
    NULL_TO_DEFAULT = "null for a field without presence is emitted as its default"
    # "plain scalar ... always, with its default (required fields)"; "`repeated`, `map` always (`[]` / `{}`)";
    # a nullable field is emitted as `null`.
    ADDED_DEFAULT = "an absent field without presence is emitted with its default"
    # "... marked omit_empty: omitted when empty".
    DROPPED_EMPTY = "an empty omit_empty list / map is omitted"
    # "Untyped objects: ... The arm is emitted with its tag." (`{"role": ...}` → `"type": "message"`).
    ADDED_TAG = "an untyped union arm is emitted with its `type` tag"
    # "... marked json_default: emitted with that JSON when unset" (and an object completed with its
    # keys): the keys a Response always has (`truncation`, `service_tier`, `usage`, ...).
    ADDED_JSON_DEFAULT = "an absent field is emitted with its contract json_default"
    NULL_TO_JSON_DEFAULT = "null for a field with a json_default is emitted as that default"


def _json_defaults() -> dict[str, list[Any]]:
    """JSON key -> the json_default values the contract gives fields of that name (and the keys inside
    an object default, which complete a set object)."""
    from responses_gateway.v1 import annotations_pb2, events_pb2, responses_service_pb2

    out: dict[str, list[Any]] = {}

    def add(key: str, value: Any) -> None:
        out.setdefault(key, []).append(value)
        if isinstance(value, dict):
            for k, v in value.items():
                add(k, v)

    seen: set[str] = set()

    def visit(desc: Any) -> None:
        if desc.full_name in seen:
            return
        seen.add(desc.full_name)
        for fd in desc.fields:
            literal = fd.GetOptions().Extensions[annotations_pb2.json_default]
            if literal:
                add(fd.name, json.loads(literal))
            if fd.message_type is not None:
                visit(fd.message_type)

    for module in (events_pb2, responses_service_pb2):
        for desc in module.DESCRIPTOR.message_types_by_name.values():
            visit(desc)
    return out


JSON_DEFAULTS = _json_defaults()


def _is_json_default(key: str, v: Any) -> bool:
    return any(_same_json(v, d) for d in JSON_DEFAULTS.get(key, ()))


DEFAULTS: tuple[Any, ...] = (0, "", False, [], {}, None)


@dataclass(frozen=True)
class Normalization:
    kind: Kind
    path: str
    value: str  # repr of the value involved (the dropped one or the added one)

    @property
    def key(self) -> str:
        """The JSON key the normalization happened at (the path's last component)."""
        return self.path.rsplit(".", 1)[-1]


def _is_default(v: Any) -> bool:
    return any(_same_json(v, d) for d in DEFAULTS)


def _same_json(a: Any, b: Any) -> bool:
    return not diff(a, b)[1]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def diff(original: Any, encoded: Any, path: str = "") -> tuple[list[Normalization], list[str]]:
    """(documented normalizations, mismatches) between a JSON value and its round trip."""
    norms: list[Normalization] = []
    bad: list[str] = []
    _walk(original, encoded, path, norms, bad)
    return norms, bad


def _walk(a: Any, b: Any, path: str, norms: list[Normalization], bad: list[str]) -> None:
    where = path or "<root>"
    if isinstance(a, bool) or isinstance(b, bool):
        if not (isinstance(a, bool) and isinstance(b, bool) and a == b):
            bad.append(f"{where}: {a!r} became {b!r}")
        return
    if isinstance(a, int | float) and isinstance(b, int | float):
        if a != b:
            bad.append(f"{where}: {a!r} became {b!r}")
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k, x in a.items():
            p = _join(path, k)
            if k not in b:
                if x is None:
                    norms.append(Normalization(Kind.DROPPED_NULL, p, "None"))
                elif x == [] or x == {}:
                    norms.append(Normalization(Kind.DROPPED_EMPTY, p, repr(x)))
                else:
                    bad.append(f"{p}: {x!r} was lost")
            elif x is None and b[k] is not None:
                if _is_json_default(k, b[k]):
                    norms.append(Normalization(Kind.NULL_TO_JSON_DEFAULT, p, repr(b[k])))
                elif k == "type" and isinstance(b[k], str):
                    norms.append(Normalization(Kind.ADDED_TAG, p, repr(b[k])))
                elif _is_default(b[k]):
                    norms.append(Normalization(Kind.NULL_TO_DEFAULT, p, repr(b[k])))
                else:
                    bad.append(f"{p}: null became {b[k]!r}")
            else:
                _walk(x, b[k], p, norms, bad)
        for k, y in b.items():
            if k in a:
                continue
            p = _join(path, k)
            if k == "type" and isinstance(y, str):
                norms.append(Normalization(Kind.ADDED_TAG, p, repr(y)))
            elif _is_json_default(k, y):
                norms.append(Normalization(Kind.ADDED_JSON_DEFAULT, p, repr(y)))
            elif _is_default(y):
                norms.append(Normalization(Kind.ADDED_DEFAULT, p, repr(y)))
            else:
                bad.append(f"{p}: {y!r} was added")
        return
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            bad.append(f"{where}: {len(a)} elements became {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _walk(x, y, f"{path}[{i}]", norms, bad)
        return
    if type(a) is not type(b) or a != b:
        bad.append(f"{where}: {a!r} became {b!r}")


def assert_same_modulo(
    original: Any, encoded: Any, tolerate: frozenset[Kind] = frozenset()
) -> list[Normalization]:
    """Fail unless `encoded` equals `original` up to the `tolerate`d kinds; return the normalizations seen."""
    norms, bad = diff(original, encoded)
    bad += [
        f"{n.path}: {n.kind.value} ({n.value}), not tolerated here" for n in norms if n.kind not in tolerate
    ]
    assert not bad, "round trip changed the JSON:\n  " + "\n  ".join(bad)
    return norms
