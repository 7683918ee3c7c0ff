"""The spec's JSON Schemas made self-contained and small, and hypothesis strategies compiled from them.

`self_contained(name)` inlines every `$ref` of `#/components/schemas/<name>` (recursive ones up to a depth limit,
past which the branch is dropped), turns `oneOf` into `anyOf`, merges `allOf`, and drops the keywords that only
document (descriptions, examples, `format`, `pattern`, vendor extensions). Numbers are bounded to +-2**53 (what
a double, hence `google.protobuf.Value`, holds exactly), and arrays / strings / free-form objects are kept small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.spec import load_spec

SPEC_NAME = "openai-responses.openapi.json"
REPO = Path(__file__).resolve().parents[2]
REF_PREFIX = "#/components/schemas/"

MAX_INT = 2**53
MAX_ITEMS = 2
MAX_STRING = 12
MAX_PROPERTIES = 2

# Keywords that only describe: dropped wherever a schema (not a `properties` map) has them.
_DOC_KEYS = frozenset(
    {
        "description",
        "title",
        "example",
        "examples",
        "default",
        "deprecated",
        "discriminator",
        "format",
        "pattern",
        "propertyNames",
        "$recursiveAnchor",
        "readOnly",
        "writeOnly",
    }
)

_DROP: Any = object()  # a branch past the depth limit


def spec() -> dict[str, Any]:
    return load_spec()


def schemas() -> dict[str, Any]:
    return spec()["components"]["schemas"]  # type: ignore[no-any-return]


def self_contained(name: str, max_depth: int = 2) -> dict[str, Any]:
    """`#/components/schemas/<name>` with no `$ref` left; each schema nests at most `max_depth` times in itself."""
    out = _inline({"$ref": REF_PREFIX + name}, {}, max_depth, None)
    if out is _DROP:
        raise ValueError(f"{name}: nothing left after the depth limit")
    return out  # type: ignore[no-any-return]


def _inline(sch: Any, seen: dict[str, int], max_depth: int, recursive_root: Any) -> Any:
    if sch is True or sch is False:
        return sch
    if not isinstance(sch, dict):
        raise TypeError(f"not a schema: {sch!r}")
    if "$recursiveRef" in sch:
        # Only CompoundFilter uses it (filters nest filters); inline it like a ref to that schema.
        return _inline({"$ref": REF_PREFIX + "CompoundFilter"}, seen, max_depth, recursive_root)
    if "$ref" in sch:
        ref = sch["$ref"]
        if not ref.startswith(REF_PREFIX):
            raise ValueError(f"unsupported $ref {ref}")
        target = ref[len(REF_PREFIX) :]
        depth = seen.get(target, 0)
        if depth >= max_depth:
            return _DROP
        inner = _inline(schemas()[target], {**seen, target: depth + 1}, max_depth, recursive_root)
        siblings = {
            k: v for k, v in sch.items() if k != "$ref" and k not in _DOC_KEYS and not k.startswith("x-")
        }
        if inner is _DROP or not siblings:
            return inner
        rest = _inline(siblings, seen, max_depth, recursive_root)
        return _merge_all([inner, rest])

    out: dict[str, Any] = {}
    for k, v in sch.items():
        if k == "type" and v == "number" and sch.get("format") == "unixtime":
            # Timestamps (`created_at`, `completed_at`) are `number`s in the spec but int64 in the contract
            # (OpenAI sends integers); generate what OpenAI sends. Reported as a proto deviation.
            out[k] = "integer"
            continue
        if k in _DOC_KEYS or k.startswith("x-"):
            continue
        if k in ("anyOf", "oneOf"):
            branches = [b for b in (_inline(x, seen, max_depth, recursive_root) for x in v) if b is not _DROP]
            if not branches:
                return _DROP
            out["anyOf"] = out.get("anyOf", []) + branches
        elif k == "allOf":
            parts = [_inline(x, seen, max_depth, recursive_root) for x in v]
            if any(p is _DROP for p in parts):
                return _DROP
            out["allOf"] = parts
        elif k == "properties":
            props = {}
            for pname, psch in v.items():
                p = _inline(psch, seen, max_depth, recursive_root)
                if p is _DROP:
                    if pname in sch.get("required", ()):
                        return _DROP
                    continue
                props[pname] = p
            out["properties"] = props
        elif k in ("items", "additionalProperties", "not", "if", "then", "else", "contains"):
            sub = _inline(v, seen, max_depth, recursive_root)
            if sub is _DROP:
                if k == "items":
                    out["maxItems"] = 0
                    continue
                if k == "additionalProperties":
                    out[k] = False
                    continue
                return _DROP
            out[k] = sub
        else:
            out[k] = v
    if "allOf" in out:
        parts = out.pop("allOf")
        out = _merge_all([*parts, out])
    return _bound(out)


def _merge_all(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """allOf of object schemas → one object schema (the spec only combines property sets)."""
    out: dict[str, Any] = {}
    for p in parts:
        for k, v in p.items():
            if k == "properties":
                out.setdefault("properties", {}).update(v)
            elif k == "required":
                out["required"] = sorted({*out.get("required", []), *v})
            elif k == "anyOf" and "anyOf" in out:
                raise ValueError("cannot merge two anyOf in an allOf")
            else:
                out[k] = v
    return out


def _bound(sch: dict[str, Any]) -> dict[str, Any]:
    t = sch.get("type")
    types = set(t) if isinstance(t, list) else {t}
    if types & {"integer", "number"}:
        sch["minimum"] = max(sch.get("minimum", -MAX_INT), -MAX_INT)
        sch["maximum"] = min(sch.get("maximum", MAX_INT), MAX_INT)
    if "array" in types or "items" in sch:
        sch["maxItems"] = min(sch.get("maxItems", MAX_ITEMS), MAX_ITEMS)
    if "string" in types and "enum" not in sch:
        sch["maxLength"] = max(min(sch.get("maxLength", MAX_STRING), MAX_STRING), sch.get("minLength", 0))
    if "object" in types or "properties" in sch:
        # Keys beyond the declared properties are allowed (they exercise extra_fields) but few.
        sch["maxProperties"] = len(sch.get("properties", {})) + MAX_PROPERTIES
    return sch


# --- hypothesis strategies from the self-contained schemas ----------------------------------------
# hypothesis-jsonschema 0.23.1 cannot be used: with hypothesis 6.170 every object strategy fails
# (`'many' object has no attribute 'more'`), and canonicalising these schemas alone takes 10-20 s.

# Extra keys get a prefix no contract field has, so they can only land in `extra_fields`.
UNKNOWN_KEY_PREFIX = "~"

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_INT, MAX_INT)
    | st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)
    | st.text(max_size=MAX_STRING)
)
ANY_JSON: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=MAX_ITEMS)
        | st.dictionaries(st.text(max_size=6), inner, max_size=MAX_PROPERTIES)
    ),
    max_leaves=4,
)
_unknown_keys = st.text(max_size=6).map(lambda s: UNKNOWN_KEY_PREFIX + s)


def strategy_for(sch: Any) -> st.SearchStrategy[Any]:
    """Instances of a self-contained schema (see `self_contained`)."""
    if sch is True:
        return ANY_JSON
    if sch is False:
        return st.nothing()
    if "anyOf" in sch:
        rest = {k: v for k, v in sch.items() if k != "anyOf"}
        return st.one_of([strategy_for(_merge_all([rest, b]) if rest else b) for b in sch["anyOf"]])
    if "const" in sch:
        return st.just(sch["const"])
    if "enum" in sch:
        return st.sampled_from(sch["enum"])
    t = sch.get("type")
    if isinstance(t, list):
        return st.one_of([strategy_for({**sch, "type": x}) for x in t])
    if t is None:
        if "properties" in sch or "additionalProperties" in sch:
            t = "object"
        elif "items" in sch:
            t = "array"
        else:
            return ANY_JSON
    if t == "null":
        return st.none()
    if t == "boolean":
        return st.booleans()
    if t == "integer":
        return st.integers(sch.get("minimum"), sch.get("maximum"))
    if t == "number":
        lo, hi = sch.get("minimum"), sch.get("maximum")
        return st.integers(lo, hi) | st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    if t == "string":
        return st.text(min_size=sch.get("minLength", 0), max_size=sch.get("maxLength", MAX_STRING))
    if t == "array":
        items = strategy_for(sch.get("items", True))
        return st.lists(items, min_size=sch.get("minItems", 0), max_size=sch.get("maxItems", MAX_ITEMS))
    if t == "object":
        return _object(sch)
    raise ValueError(f"unsupported schema type {t!r}")


def _object(sch: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props: dict[str, Any] = sch.get("properties", {})
    required = [p for p in sch.get("required", []) if p in props]
    fixed = st.fixed_dictionaries(
        {p: strategy_for(props[p]) for p in required},
        optional={p: strategy_for(s) for p, s in props.items() if p not in required},
    )
    extra = sch.get("additionalProperties", True)
    if extra is False:
        return fixed
    # An open object with known keys gets unknown ones that never collide with them; a map any keys.
    keys = _unknown_keys if props else st.text(max_size=6)
    values = ANY_JSON if extra is True else strategy_for(extra)
    extras = st.dictionaries(keys, values, max_size=MAX_PROPERTIES)
    return st.tuples(fixed, extras).map(lambda fe: {**fe[1], **fe[0]})
