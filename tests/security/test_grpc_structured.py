"""Well-formed gRPC requests with random field values, drawn from the descriptors: what only gRPC can
send (enum numbers the contract does not define, several oneof arms in turn, extreme integers, NaN,
unset required fields) must still earn a client code, never UNKNOWN / INTERNAL.

Strings come from an alphabet without control characters, '/', '?', '#' and '%': ids with those are
tested (and their cause named) in test_grpc_fuzz.py, and would drown everything else here.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from responses_gateway import codec
from tests.security.conftest import FUZZ_SCALE, GRPC_AUTH, MODELS, grpc_problem
from tests.security.test_grpc_fuzz import METHODS

SAFE = st.text(alphabet=st.characters(exclude_characters="/?#%", exclude_categories=["Cc", "Cs"]), max_size=8)
STRINGS = st.one_of(SAFE, st.sampled_from([*MODELS, "resp_abc", "conv_1", "", "x" * 300]))
INTS = {
    FieldDescriptor.CPPTYPE_INT64: st.sampled_from([0, 1, -1, 20, 2**63 - 1, -(2**63)]),
    FieldDescriptor.CPPTYPE_INT32: st.sampled_from([0, 1, -1, 2**31 - 1, -(2**31)]),
    FieldDescriptor.CPPTYPE_UINT64: st.sampled_from([0, 1, 2**64 - 1]),
    FieldDescriptor.CPPTYPE_UINT32: st.sampled_from([0, 1, 2**32 - 1]),
}
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, 1.0, 2.5, -1.0])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | SAFE,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(SAFE, inner, max_size=2),
    max_leaves=6,
)
OPEN = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}


def _scalar(fd: FieldDescriptor) -> st.SearchStrategy[Any]:
    cpp = fd.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        return STRINGS if fd.type == FieldDescriptor.TYPE_STRING else st.binary(max_size=8)
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return st.booleans()
    if cpp in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
        return FLOATS
    if cpp == FieldDescriptor.CPPTYPE_ENUM:  # proto3 enums are open: any int32 parses
        assert fd.enum_type is not None
        return st.sampled_from([v.number for v in fd.enum_type.values] + [77, -1])
    return INTS[cpp]


@st.composite
def messages(draw: st.DrawFn, desc: Descriptor, depth: int = 0) -> Message:
    """A message of type `desc` with a random subset of its fields set (messages up to 4 levels)."""
    from google.protobuf import message_factory

    msg = message_factory.GetMessageClass(desc)()
    if desc.full_name in OPEN:
        wrapped = {"google.protobuf.Struct": st.dictionaries(SAFE, JSON, max_size=2)}
        value = draw(
            wrapped.get(desc.full_name, st.lists(JSON, max_size=2) if "List" in desc.full_name else JSON)
        )
        return codec.from_json(msg, value)
    for fd in desc.fields:
        if not draw(st.booleans()) or (fd.message_type is not None and depth >= 4):
            continue
        mt = fd.message_type
        if mt is not None and mt.GetOptions().map_entry:
            key_fd, value_fd = mt.fields_by_name["key"], mt.fields_by_name["value"]
            for _ in range(draw(st.integers(0, 2))):
                key = draw(_scalar(key_fd))
                if value_fd.message_type is not None:
                    getattr(msg, fd.name)[key].CopyFrom(draw(messages(value_fd.message_type, depth + 1)))
                else:
                    getattr(msg, fd.name)[key] = draw(_scalar(value_fd))
        elif fd.is_repeated:
            for _ in range(draw(st.integers(0, 2))):
                if mt is not None:
                    getattr(msg, fd.name).add().CopyFrom(draw(messages(mt, depth + 1)))
                else:
                    getattr(msg, fd.name).append(draw(_scalar(fd)))
        elif mt is not None:
            getattr(msg, fd.name).CopyFrom(draw(messages(mt, depth + 1)))
        else:
            setattr(msg, fd.name, draw(_scalar(fd)))
    return msg


@pytest.mark.parametrize("method", list(METHODS))
def test_random_well_formed_requests(channel: grpc.Channel, method: str) -> None:
    streams, valid = METHODS[method]
    desc: Any = valid.DESCRIPTOR
    problems: list[str] = []

    @seed(20261201)
    @settings(
        max_examples=40 * FUZZ_SCALE,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(request=messages(desc), base=st.booleans())
    def run(request: Message, base: bool) -> None:
        if base:  # half start from the method's valid request, so they get past the first check
            merged = type(valid)()
            merged.CopyFrom(valid)
            merged.MergeFrom(request)
            request = merged
        payload = request.SerializeToString()
        try:
            if streams:
                for _ in channel.unary_stream(method)(payload, timeout=30, metadata=GRPC_AUTH):
                    pass
            else:
                channel.unary_unary(method)(payload, timeout=30, metadata=GRPC_AUTH)
        except grpc.RpcError as e:
            problem = grpc_problem(e)
            if problem is not None:
                problems.append(f"{problem[:200]}\n    {codec.to_json(request)!s:.600}")

    run()
    kinds = sorted({p.split("\n")[0] for p in problems})
    assert not problems, f"{len(kinds)} kinds of wrong code:\n" + "\n".join(
        next(p for p in problems if p.startswith(k)) for k in kinds
    )
