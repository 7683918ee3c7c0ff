"""Per-message JSON converters, built once from the descriptors and the contract's options.

The rules are written down in docs/contract.md. Each message descriptor gets one `MessagePlan`, whose
fields are precompiled into small encode/decode closures, so the per-event work on the streaming hot
path is a loop over the fields that are actually set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from responses_gateway.codec.defaults import (
    FLOAT_TYPES,
    INT_TYPES,
    MISSING,
    REPAIR,
    Fresh,
    RepairRule,
    emit_default,
    fill,
    fill_template,
    is_map,
    repair,
)
from responses_gateway.codec.values import (
    MAX_DEPTH,
    TOO_DEEP,
    NestingTooDeep,
    list_json,
    number_to_json,
    set_list,
    set_struct,
    set_value,
    struct_json,
    value_json,
)
from responses_gateway.errors import InvalidInput, echo
from responses_gateway.v1 import annotations_pb2 as ann

EXTRA_FIELDS: Final = "extra_fields"
UNKNOWN_ARM: Final = "unknown"
UNION_ONEOF: Final = "kind"


class CodecError(InvalidInput):
    """JSON that does not fit the contract. `param` is the dotted path OpenAI puts in `error.param`."""

    def __init__(self, message: str, path: list[str | int] | None = None) -> None:
        super().__init__(message)
        self.reason = message
        self.path: list[str | int] = path if path is not None else []

    @property
    def message(self) -> str:
        return self.reason

    @property
    def param(self) -> str | None:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out or None

    def __str__(self) -> str:
        param = self.param
        return f"{self.reason} at '{param}'" if param else self.reason


Encoder = Callable[[Any], Any]
# (message, JSON value, depth): `depth` is the message's level below the decoded root (the root is 1),
# counted as protobuf counts nesting (values.py's MAX_DEPTH); scalar decoders ignore it.
Decoder = Callable[[Message, Any, int], None]


def check_depth(depth: int) -> None:
    """Every message plan's decoder starts here: past MAX_DEPTH, protobuf could not parse it back."""
    if depth > MAX_DEPTH:
        raise CodecError(TOO_DEEP)


def value_error(e: ValueError | OverflowError, path: list[str | int]) -> CodecError:
    """A value protobuf cannot hold (out of range, a lone surrogate, nested too deeply)."""
    return CodecError(
        str(e) if isinstance(e, NestingTooDeep) else f"Invalid value: {echo(str(e), 200)}", path
    )


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


def _expected(what: str, got: Any) -> CodecError:
    return CodecError(f"Invalid type: expected {what}, got {_describe(got)}")


# --- scalar checks (shared by singular, repeated and map fields) ---------------------------------


def _check_str(v: Any) -> str:
    if type(v) is not str:
        raise _expected("a string", v)
    return v


def _check_int(v: Any) -> int:
    if type(v) is int:
        return v
    if type(v) is float and v.is_integer():
        return int(v)
    raise _expected("an integer", v)


def _check_float(v: Any) -> float:
    if type(v) is float or type(v) is int:
        return float(v)
    raise _expected("a number", v)


def _check_bool(v: Any) -> bool:
    if type(v) is not bool:
        raise _expected("a boolean", v)
    return v


def _scalar_check(fd: FieldDescriptor) -> Callable[[Any], Any]:
    t = fd.type
    if t == FieldDescriptor.TYPE_STRING:
        return _check_str
    if t in INT_TYPES:
        return _check_int
    if t in FLOAT_TYPES:
        return _check_float
    if t == FieldDescriptor.TYPE_BOOL:
        return _check_bool
    raise TypeError(f"{fd.full_name}: unsupported field type {t}")


def _scalar_encoder(fd: FieldDescriptor) -> Encoder | None:
    """None means identity (str, int, bool)."""
    return number_to_json if fd.type in FLOAT_TYPES else None


class EnumPlan:
    """JSON spelling of each value: the name less the enum's prefix, lower-cased, or its `enum_json`."""

    def __init__(self, desc: EnumDescriptor) -> None:
        prefix = ""
        for v in desc.values:
            if v.number == 0 and v.name.endswith("UNSPECIFIED"):
                prefix = v.name[: -len("UNSPECIFIED")]
        self.to_json: dict[int, str] = {}
        self.from_json: dict[str, int] = {}
        for v in desc.values:
            if v.number == 0:
                continue
            spelling = v.GetOptions().Extensions[ann.enum_json]
            if not spelling:
                name = v.name[len(prefix) :] if prefix and v.name.startswith(prefix) else v.name
                spelling = name.lower()
            self.to_json[v.number] = spelling
            self.from_json[spelling] = v.number


_enum_plans: dict[str, EnumPlan] = {}


def enum_plan(desc: EnumDescriptor) -> EnumPlan:
    plan = _enum_plans.get(desc.full_name)
    if plan is None:
        plan = _enum_plans[desc.full_name] = EnumPlan(desc)
    return plan


class FieldPlan:
    __slots__ = (
        "decode",
        "default",
        "encode",
        "exact",
        "fd",
        "fill",
        "json",
        "name",
        "omit_if_empty",
        "plain",
    )

    def __init__(self, fd: FieldDescriptor) -> None:
        self.fd = fd
        self.name = fd.name
        self.json = fd.GetOptions().Extensions[ann.json_name] or fd.name
        self.fill: dict[str, Any] | None = fill_template(fd)
        self.encode: Encoder = _filling(_build_encoder(fd), self.fill)
        self.decode: Decoder = _build_decoder(fd, self.json)
        self.default: Any = emit_default(fd)
        # An empty array (object) here is an unset field, and `encode` leaves an unset one out.
        self.omit_if_empty = fd.is_repeated and self.default is MISSING
        # The shortcuts of the common case, taken by the object plans' loops (most fields of most
        # messages are single strings, integers and booleans; a streamed delta is nothing else):
        # `plain`: the JSON value is the field's value itself (no encoder call); `exact`: a JSON
        # value of exactly this Python type is set as it is (anything else, or a value the field
        # refuses, goes through `decode` and its checks and error messages).
        self.plain = self.encode is _identity
        self.exact: type | None = _exact_type(fd)


def _exact_type(fd: FieldDescriptor) -> type | None:
    if fd.is_repeated or fd.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_ENUM):
        return None
    if fd.type == FieldDescriptor.TYPE_STRING:
        return str
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return bool
    if fd.type in FLOAT_TYPES:
        return float
    return int if fd.type in INT_TYPES else None


def message_type(fd: FieldDescriptor) -> Descriptor:
    mt = fd.message_type
    if mt is None:
        raise TypeError(f"{fd.full_name} is not a message field")
    return mt


def enum_type(fd: FieldDescriptor) -> EnumDescriptor:
    et = fd.enum_type
    if et is None:
        raise TypeError(f"{fd.full_name} is not an enum field")
    return et


def _filling(encode: Encoder, template: dict[str, Any] | None) -> Encoder:
    if template is None:
        return encode
    return lambda m: fill(encode(m), template)


def _build_encoder(fd: FieldDescriptor) -> Encoder:
    if is_map(fd):
        value_fd = message_type(fd).fields_by_name["value"]
        enc_v = _single_encoder(value_fd)
        if enc_v is None:
            return dict
        return lambda m: {k: enc_v(x) for k, x in m.items()}
    single = _single_encoder(fd)
    if fd.is_repeated:
        if single is None:
            return list
        return lambda xs: [single(x) for x in xs]
    return single if single is not None else _identity


def _identity(v: Any) -> Any:
    return v


def _single_encoder(fd: FieldDescriptor) -> Encoder | None:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        sub = plan_for(message_type(fd))  # may still be under construction (recursive types)
        return lambda m: sub.encode(m)
    if fd.type == FieldDescriptor.TYPE_ENUM:
        names = enum_plan(enum_type(fd)).to_json
        return names.get
    return _scalar_encoder(fd)


def _build_decoder(fd: FieldDescriptor, key: str) -> Decoder:
    name = fd.name
    if is_map(fd):
        return _map_decoder(fd)
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        sub = plan_for(message_type(fd))
        if fd.is_repeated:

            def dec_repeated_msg(msg: Message, v: Any, depth: int) -> None:
                if type(v) is not list:
                    raise _expected("an array", v)
                items = getattr(msg, name)
                for i, x in enumerate(v):
                    try:
                        sub.decode(items.add(), x, depth + 1)
                    except CodecError as e:
                        e.path.insert(0, i)
                        raise

            return dec_repeated_msg

        def dec_msg(msg: Message, v: Any, depth: int) -> None:
            target = getattr(msg, name)
            target.SetInParent()
            sub.decode(target, v, depth + 1)

        return dec_msg
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return _enum_decoder(fd, key)
    check = _scalar_check(fd)
    if fd.is_repeated:

        def dec_repeated(msg: Message, v: Any, depth: int) -> None:
            if type(v) is not list:
                raise _expected("an array", v)
            getattr(msg, name).extend([check(x) for x in v])

        return dec_repeated

    def dec_scalar(msg: Message, v: Any, depth: int) -> None:
        try:
            setattr(msg, name, check(v))
        except ValueError as e:  # out of range for the field's integer type
            if isinstance(e, CodecError):
                raise
            raise CodecError(f"Invalid value: {echo(str(e), 200)}") from None

    return dec_scalar


def _enum_decoder(fd: FieldDescriptor, key: str) -> Decoder:
    """An enum string the contract does not know yet is kept in extra_fields, so it round-trips."""
    name = fd.name
    numbers = enum_plan(enum_type(fd)).from_json

    def keep(msg: Message, v: Any, depth: int) -> None:
        set_value(msg.extra_fields[key], v, depth + 2)  # type: ignore[attr-defined]

    if fd.is_repeated:

        def dec_repeated_enum(msg: Message, v: Any, depth: int) -> None:
            if type(v) is not list:
                raise _expected("an array", v)
            found = [numbers.get(_check_str(x)) for x in v]
            if None in found:
                keep(msg, v, depth)
            else:
                getattr(msg, name).extend(found)

        return dec_repeated_enum

    def dec_enum(msg: Message, v: Any, depth: int) -> None:
        number = numbers.get(_check_str(v))
        if number is None:
            keep(msg, v, depth)
        else:
            setattr(msg, name, number)

    return dec_enum


def _map_decoder(fd: FieldDescriptor) -> Decoder:
    name = fd.name
    value_fd = message_type(fd).fields_by_name["value"]
    if value_fd.type == FieldDescriptor.TYPE_MESSAGE:
        sub = plan_for(message_type(value_fd))

        def dec_msg_map(msg: Message, v: Any, depth: int) -> None:
            if type(v) is not dict:
                raise _expected("an object", v)
            target = getattr(msg, name)
            for k, x in v.items():
                try:
                    sub.decode(target[k], x, depth + 2)  # the map entry, then the value
                except CodecError as e:
                    e.path.insert(0, k)
                    raise

        return dec_msg_map
    check: Callable[[Any], Any]
    if value_fd.type == FieldDescriptor.TYPE_ENUM:
        numbers = enum_plan(enum_type(value_fd)).from_json

        def check_enum(x: Any) -> Any:
            number = numbers.get(_check_str(x))
            if number is None:
                raise CodecError(f"Invalid value: '{echo(x)}'")
            return number

        check = check_enum
    else:
        check = _scalar_check(value_fd)

    def dec_scalar_map(msg: Message, v: Any, depth: int) -> None:
        if type(v) is not dict:
            raise _expected("an object", v)
        target = getattr(msg, name)
        for k, x in v.items():
            try:
                target[k] = check(x)
            except CodecError as e:
                e.path.insert(0, k)
                raise

    return dec_scalar_map


# --- message plans -------------------------------------------------------------------------------

_plans: dict[str, MessagePlan] = {}
# The plan builders of the wrapper shapes (`list`, `union`), which unions.py registers when it is
# imported (codec/__init__ does): plans.py never imports unions.py, so the two do not import each other.
SHAPES: dict[str, Callable[[Descriptor], tuple[Callable[[Message], Any], Callable[..., None]]]] = {}


def plan_for(desc: Descriptor) -> MessagePlan:
    plan = _plans.get(desc.full_name)
    if plan is None:
        plan = MessagePlan(desc)  # it registers itself before building its fields (recursive types)
    return plan


class MessagePlan:
    """Encoder and decoder of one message type; `encode(msg)` → JSON value, `decode(msg, json)`."""

    encode: Callable[[Message], Any]
    decode: Callable[..., None]  # (message, json, depth) — objects also take the keys a union consumed
    # Objects only: encode(msg, out) fills `out` (a union's arm, with its `type` first) in place.
    encode_into: Callable[..., dict[str, Any]] | None = None

    def __init__(self, desc: Descriptor) -> None:
        self.desc = desc
        full = desc.full_name
        _plans[full] = self  # registered before building: messages can be recursive
        opts = desc.GetOptions()
        if full == "google.protobuf.Struct":
            self.encode, self.decode = struct_json, _struct_decode  # type: ignore[assignment]
        elif full == "google.protobuf.Value":
            self.encode, self.decode = value_json, set_value  # type: ignore[assignment]
        elif full == "google.protobuf.ListValue":
            self.encode, self.decode = list_json, _list_value_decode  # type: ignore[assignment]
        elif opts.Extensions[ann.list]:
            self.encode, self.decode = SHAPES["list"](desc)
        elif opts.Extensions[ann.union]:
            self.encode, self.decode = SHAPES["union"](desc)
        else:
            self.encode, self.decode = build_object_plan(desc)
            self.encode_into = self.encode


def _struct_decode(msg: Message, v: Any, depth: int) -> None:
    if type(v) is not dict:
        raise _expected("an object", v)
    set_struct(msg, v, depth)  # type: ignore[arg-type]


def _list_value_decode(msg: Message, v: Any, depth: int) -> None:
    if type(v) is not list:
        raise _expected("an array", v)
    set_list(msg, v, depth)  # type: ignore[arg-type]


def object_fields(desc: Descriptor, only: Callable[[FieldDescriptor], bool] | None = None) -> list[FieldPlan]:
    return [FieldPlan(fd) for fd in desc.fields if fd.name != EXTRA_FIELDS and (only is None or only(fd))]


def repair_rules(fields: list[FieldPlan]) -> list[RepairRule]:
    return [
        RepairRule(
            fp.json, fp.default, fp.omit_if_empty, fp.fill, fp.fd.type in INT_TYPES and not is_map(fp.fd)
        )
        for fp in fields
    ]


def encode_fields(present: dict[Any, Any], fields: list[FieldPlan], out: dict[str, Any]) -> None:
    for fp in fields:
        v = present.get(fp.fd, MISSING)
        if v is MISSING:
            d = fp.default
            if d is MISSING:
                continue
            out[fp.json] = d.make() if type(d) is Fresh else d
        elif fp.plain:
            out[fp.json] = v
        else:
            out[fp.json] = fp.encode(v)


def set_field(fp: FieldPlan, msg: Message, v: Any, depth: int) -> None:
    """`decode_field`, with the shortcut of a value of the field's exact scalar type."""
    if type(v) is fp.exact:
        try:
            setattr(msg, fp.name, v)
            return
        except ValueError:  # e.g. out of range: decode_field says so properly
            pass
    decode_field(fp, msg, v, depth)


def decode_field(fp: FieldPlan, msg: Message, v: Any, depth: int) -> None:
    try:
        fp.decode(msg, v, depth)
    except CodecError as e:
        e.path.insert(0, fp.json)
        raise
    # Its own name: compiled (mypyc), one name is one type throughout the function.
    except (ValueError, OverflowError) as bad:
        raise value_error(bad, [fp.json]) from None


_NO_SKIP: Final[frozenset[str]] = frozenset()


def build_object_plan(desc: Descriptor) -> tuple[Callable[..., dict[str, Any]], Callable[..., None]]:
    """A plain object: known fields by name, everything else into `extra_fields`."""
    fields = object_fields(desc)
    rules = repair_rules(fields)
    by_json = {fp.json: fp for fp in fields}
    extra_fd = desc.fields_by_name.get(EXTRA_FIELDS)
    # A real oneof (not proto3 `optional`'s own): of two members sent, decode keeps the last, so
    # the JSON read cannot be repaired into what encode gives (the contract has none so far).
    exclusive = any(not (len(o.fields) == 1 and o.name == "_" + o.fields[0].name) for o in desc.oneofs)

    def encode(msg: Message, out: dict[str, Any] | None = None) -> dict[str, Any]:
        """`out`: the dict to fill (a union's arm starts it with its `type`)."""
        present = dict(msg.ListFields())
        if out is None:
            out = {}
        encode_fields(present, fields, out)
        if extra_fd is not None:
            extra = present.get(extra_fd)
            if extra:
                for k, x in extra.items():
                    out[k] = value_json(x)
        return out

    def decode(msg: Message, v: Any, depth: int, skip: frozenset[str] = _NO_SKIP) -> None:
        """`skip`: keys a union consumed already (`type`, its common fields)."""
        if depth > MAX_DEPTH:  # check_depth, inline: this runs for every object decoded
            raise CodecError(TOO_DEEP)
        if type(v) is not dict:
            raise _expected("an object", v)
        for k, x in v.items():
            fp = by_json.get(k)
            if fp is None:
                if k in skip:
                    continue
                if extra_fd is None:
                    raise CodecError("Unknown parameter", [k])
                try:
                    set_value(msg.extra_fields[k], x, depth + 2)  # type: ignore[attr-defined]
                except (ValueError, OverflowError) as e:
                    raise value_error(e, [k]) from None
            elif x is not None:
                # set_field, inlined: this loop runs for every key of every object decoded.
                if type(x) is fp.exact:
                    try:
                        setattr(msg, fp.name, x)
                        continue
                    except ValueError:  # e.g. out of range: decode_field says so properly
                        pass
                decode_field(fp, msg, x, depth)
        if REPAIR.thread and REPAIR.active():
            repair(rules, v)
            if exclusive:
                REPAIR.ok = False

    return encode, decode
