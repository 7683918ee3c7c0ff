"""Union and list messages (docs/contract.md, "Unions").

A union's JSON is its active arm: a `type`-tagged object, an untyped object recognised by a key, a
scalar, or an array (a list message). Whatever matches no arm is kept whole in the `unknown` arm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from responses_gateway.codec.defaults import REPAIR, repair
from responses_gateway.codec.plans import (
    SHAPES,
    UNION_ONEOF,
    UNKNOWN_ARM,
    CodecError,
    FieldPlan,
    MessagePlan,
    check_depth,
    encode_fields,
    enum_plan,
    enum_type,
    message_type,
    object_fields,
    plan_for,
    repair_rules,
    set_field,
)
from responses_gateway.codec.values import number_to_json, set_value, value_json
from responses_gateway.errors import echo
from responses_gateway.v1 import annotations_pb2 as ann

Encode = Callable[[Message], Any]
Decode = Callable[..., None]


def build_list_plan(desc: Descriptor) -> tuple[Encode, Decode]:
    """A list message is the JSON array of its single repeated field."""
    repeated = [fd for fd in desc.fields if fd.is_repeated]
    if len(repeated) != 1:
        raise TypeError(f"{desc.full_name}: a list message has exactly one repeated field")
    fp = FieldPlan(repeated[0])
    name = fp.name

    def encode(msg: Message) -> list[Any]:
        return fp.encode(getattr(msg, name))  # type: ignore[no-any-return]

    def decode(msg: Message, v: Any, depth: int) -> None:
        check_depth(depth)
        fp.decode(msg, v, depth)

    return encode, decode


class _Arms:
    """The arms of one union, indexed for both directions."""

    def __init__(self, desc: Descriptor) -> None:
        oneof = desc.oneofs_by_name.get(UNION_ONEOF)
        if oneof is None:
            raise TypeError(f"{desc.full_name}: a union needs `oneof {UNION_ONEOF}`")
        self.by_tag: dict[str, FieldDescriptor] = {}
        self.tag_of: dict[str, str] = {}
        self.arm_type: dict[str, Descriptor] = {}
        self.untyped: list[tuple[str, FieldDescriptor]] = []
        self.string: FieldDescriptor | None = None
        self.enum: FieldDescriptor | None = None
        self.number: FieldDescriptor | None = None
        self.boolean: FieldDescriptor | None = None
        self.array: FieldDescriptor | None = None
        self.unknown: FieldDescriptor | None = None
        for fd in oneof.fields:
            opts = fd.GetOptions()
            if fd.name == UNKNOWN_ARM:
                self.unknown = fd
            elif (
                fd.type == FieldDescriptor.TYPE_MESSAGE and message_type(fd).GetOptions().Extensions[ann.list]
            ):
                self.array = fd
            elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                # An explicitly empty tag: an untyped shape OpenAI emits without `type` ({"id": ...}).
                tag = opts.Extensions[ann.tag] if opts.HasExtension(ann.tag) else fd.name
                if tag:
                    self.by_tag[tag] = fd
                self.tag_of[fd.name] = tag
                self.arm_type[fd.name] = message_type(fd)
                key = opts.Extensions[ann.untyped_key]
                if key:
                    self.untyped.append((key, fd))
            elif fd.type == FieldDescriptor.TYPE_ENUM:
                self.enum = fd
            elif fd.type == FieldDescriptor.TYPE_STRING:
                self.string = fd
            elif fd.type == FieldDescriptor.TYPE_BOOL:
                self.boolean = fd
            else:
                self.number = fd
        if self.unknown is None:
            raise TypeError(f"{desc.full_name}: a union needs an `{UNKNOWN_ARM}` arm")


def build_union_plan(desc: Descriptor) -> tuple[Encode, Decode]:
    arms = _Arms(desc)
    oneof_fields = {fd.name for fd in desc.oneofs_by_name[UNION_ONEOF].fields}
    common = object_fields(desc, lambda fd: fd.name not in oneof_fields)
    common_rules = repair_rules(common)
    common_keys = frozenset(fp.json for fp in common)
    arm_skip = common_keys | {"type"}
    encoders = _arm_encoders(arms)
    unknown_name = UNKNOWN_ARM
    enum_numbers = enum_plan(enum_type(arms.enum)).from_json if arms.enum is not None else {}
    arm_plans: dict[str, MessagePlan] = {}

    def encode(msg: Message) -> Any:
        which = msg.WhichOneof(UNION_ONEOF)
        if which is None:
            return None
        out = encoders[which](getattr(msg, which))
        if common and type(out) is dict:
            encode_fields(dict(msg.ListFields()), common, out)
        return out

    def decode_common(msg: Message, v: dict[str, Any], depth: int) -> None:
        for fp in common:
            x = v.get(fp.json)
            if x is not None:
                set_field(fp, msg, x, depth)

    def keep_unknown(msg: Message, v: Any, depth: int) -> None:
        if common_keys and type(v) is dict:
            decode_common(msg, v, depth)
            kept = {k: x for k, x in v.items() if k not in common_keys}
            if REPAIR.thread and REPAIR.active():
                repair(common_rules, v)  # encode writes the kept object, then the common fields
            v = kept
        set_value(getattr(msg, unknown_name), v, depth + 1)

    def repair_arm(v: dict[str, Any], arm: FieldDescriptor, tagged: bool) -> None:
        """What encode writes for this arm: its `type` (also when recognised by a key), and the common fields."""
        if not tagged:
            tag = arms.tag_of[arm.name]
            if tag:
                v["type"] = tag
            elif "type" in v:  # an explicit null `type` on an untyped shape
                del v["type"]
        if common:
            repair(common_rules, v)

    def decode(msg: Message, v: Any, depth: int) -> None:
        check_depth(depth)
        kind = type(v)
        arm: FieldDescriptor | None = None
        if kind is dict:
            tag = v.get("type")
            if tag is None:
                for key, fd in arms.untyped:
                    if key in v:
                        arm = fd
                        break
            elif type(tag) is str:
                arm = arms.by_tag.get(tag)
            if arm is not None:
                target = getattr(msg, arm.name)
                target.SetInParent()
                plan = arm_plans.get(arm.name)
                if plan is None:  # looked up on first use: the arm's plan may be built after this one
                    plan = arm_plans[arm.name] = plan_for(message_type(arm))
                plan.decode(target, v, depth + 1, arm_skip)
                if common:
                    decode_common(msg, v, depth)
                if REPAIR.thread and REPAIR.active():
                    repair_arm(v, arm, tag is not None)
                return
        elif kind is str:
            if arms.enum is not None and v in enum_numbers:
                setattr(msg, arms.enum.name, enum_numbers[v])
                return
            if arms.string is not None:
                setattr(msg, arms.string.name, v)
                return
        elif kind is list and arms.array is not None:
            target = getattr(msg, arms.array.name)
            target.SetInParent()
            plan_for(message_type(arms.array)).decode(target, v, depth + 1)
            return
        elif kind is bool and arms.boolean is not None:
            setattr(msg, arms.boolean.name, v)
            return
        elif (kind is int or kind is float) and arms.number is not None:
            try:
                setattr(msg, arms.number.name, v)
            except (TypeError, ValueError):
                raise CodecError(f"Invalid value: '{echo(v)}'") from None
            return
        keep_unknown(msg, v, depth)

    return encode, decode


def _arm_encoders(arms: _Arms) -> dict[str, Callable[[Any], Any]]:
    encoders: dict[str, Callable[[Any], Any]] = {}
    for name, tag in arms.tag_of.items():
        encoders[name] = _tagged_encoder(tag, arms.arm_type[name])
    if arms.enum is not None:
        encoders[arms.enum.name] = enum_plan(enum_type(arms.enum)).to_json.get
    if arms.array is not None:
        list_plan = plan_for(message_type(arms.array))
        encoders[arms.array.name] = lambda m: list_plan.encode(m)
    for scalar in (arms.string, arms.boolean):
        if scalar is not None:
            encoders[scalar.name] = _same
    if arms.number is not None:
        is_float = arms.number.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
        encoders[arms.number.name] = number_to_json if is_float else _same
    encoders[UNKNOWN_ARM] = value_json
    return encoders


def _same(v: Any) -> Any:
    return v


def _tagged_encoder(tag: str, desc: Descriptor) -> Callable[[Message], dict[str, Any]]:
    plan = plan_for(desc)
    if not tag:
        return lambda m: plan.encode(m)

    def encode(msg: Message) -> dict[str, Any]:
        into = plan.encode_into  # read per call: the plan may be built after this (recursive types)
        if into is not None:
            return into(msg, {"type": tag})
        out: dict[str, Any] = {"type": tag}
        out.update(plan.encode(msg))
        return out

    return encode


def union_tags(desc: Descriptor) -> dict[str, str]:
    """Arm field name → JSON `type` tag, for the tagged arms of a union message."""
    return dict(_Arms(desc).tag_of)


SHAPES["list"] = build_list_plan
SHAPES["union"] = build_union_plan
