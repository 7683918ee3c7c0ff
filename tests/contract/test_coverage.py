"""Checks that the protobuf contract covers the OpenAI Responses OpenAPI spec.

Everything is derived from the spec: the `type` tags of its unions must be arms of the matching proto
unions, the properties of its request / response objects must be fields, and the structural rules of
docs/contract.md (an `unknown` arm in every union, `extra_fields` in every non-list message) must hold.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, FileDescriptor

from tests.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "proto"
PROTO_DIR = PROTO_ROOT / "responses_gateway" / "v1"
MODULES = [
    "annotations",
    "content",
    "items",
    "tools",
    "request",
    "response",
    "events",
    "responses_service",
    "models",
]
SPEC_NAME = "openai-responses.openapi.json"


# --------------------------------------------------------------------------------------------------
# Loading the spec and the generated code


@pytest.fixture(scope="session")
def schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = load_spec()["components"]["schemas"]
    return schemas


def _generate(out: Path) -> None:
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    files = sorted(str(p) for p in PROTO_DIR.glob("*.proto"))
    rc = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={out}", *files])
    assert rc == 0, "protoc failed"


@pytest.fixture(scope="session")
def pb() -> dict[str, Any]:
    """The generated `responses_gateway.v1.*_pb2` modules, generating them into a temp dir if needed."""
    try:
        return {m: importlib.import_module(f"responses_gateway.v1.{m}_pb2") for m in MODULES}
    except ImportError:
        pass
    out = Path(tempfile.mkdtemp(prefix="rg-contract-"))
    _generate(out)
    try:
        pkg = importlib.import_module("responses_gateway")
    except ImportError:
        sys.path.insert(0, str(out))
    else:  # another `responses_gateway` package (e.g. the server) is importable: graft v1 onto it
        pkg.__path__.append(str(out / "responses_gateway"))
    sys.modules.pop("responses_gateway.v1", None)
    return {m: importlib.import_module(f"responses_gateway.v1.{m}_pb2") for m in MODULES}


@pytest.fixture(scope="session")
def files(pb: dict[str, Any]) -> list[FileDescriptor]:
    return [mod.DESCRIPTOR for mod in pb.values()]


@pytest.fixture(scope="session")
def opts(pb: dict[str, Any]) -> Any:
    return pb["annotations"]


@pytest.fixture(scope="session")
def messages(files: list[FileDescriptor]) -> dict[str, Descriptor]:
    out: dict[str, Descriptor] = {}

    def walk(desc: Descriptor) -> None:
        out[desc.name] = desc
        for nested in desc.nested_types:
            if not desc.GetOptions().map_entry and not nested.GetOptions().map_entry:
                walk(nested)

    for f in files:
        for desc in f.message_types_by_name.values():
            walk(desc)
    return out


# --------------------------------------------------------------------------------------------------
# Helpers over descriptors


def _ext(options: Any, ext: Any) -> Any:
    return options.Extensions[ext] if options.HasExtension(ext) else None


def is_union(desc: Descriptor, opts: Any) -> bool:
    return bool(_ext(desc.GetOptions(), opts.union))


def is_list(desc: Descriptor, opts: Any) -> bool:
    return bool(_ext(desc.GetOptions(), opts.list))


def json_key(field: FieldDescriptor, opts: Any) -> str:
    return _ext(field.GetOptions(), opts.json_name) or field.name


def arms(desc: Descriptor) -> list[FieldDescriptor]:
    kind = desc.oneofs_by_name.get("kind")
    return list(kind.fields) if kind is not None else []


def arm_tags(desc: Descriptor, opts: Any) -> set[str]:
    """Tags of the message-typed arms (the `type` values the union accepts)."""
    tags = set()
    for f in arms(desc):
        if f.message_type is None or f.name == "unknown" or is_list(f.message_type, opts):
            continue
        tag = _ext(f.GetOptions(), opts.tag)
        tags.add(f.name if tag is None else tag)
    return {t for t in tags if t}


def enum_json_values(enum: EnumDescriptor, opts: Any) -> set[str]:
    prefix = _upper_snake(enum.name) + "_"
    out = set()
    for v in enum.values:
        if v.number == 0:
            continue
        spelled = _ext(v.GetOptions(), opts.enum_json)
        out.add(spelled if spelled is not None else v.name.removeprefix(prefix).lower())
    return out


def _upper_snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if (
            ch.isupper()
            and i
            and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower()))
        ):
            out.append("_")
        out.append(ch.upper())
    return "".join(out)


def has_presence_or_collection(field: FieldDescriptor) -> bool:
    return field.has_presence or _is_repeated(field)


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


# --------------------------------------------------------------------------------------------------
# Helpers over the spec


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def resolve(schemas: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = schemas[_ref_name(node["$ref"])]
    return node


def spec_properties(schemas: dict[str, Any], name: str) -> dict[str, Any]:
    """All properties of a schema, collected through allOf."""
    return _props(schemas, schemas[name])[0]


def spec_required(schemas: dict[str, Any], name: str) -> set[str]:
    return _props(schemas, schemas[name])[1]


def _props(schemas: dict[str, Any], node: Any) -> tuple[dict[str, Any], set[str]]:
    node = resolve(schemas, node)
    props: dict[str, Any] = dict(node.get("properties", {}))
    required: set[str] = set(node.get("required", []))
    for part in node.get("allOf", []):
        p, r = _props(schemas, part)
        props.update(p)
        required |= r
    return props, required


def type_tags(schemas: dict[str, Any], node: Any, seen: frozenset[str] = frozenset()) -> set[str]:
    """Every `type` discriminator value an (object) schema or union of schemas can carry."""
    if isinstance(node, dict) and "$ref" in node:
        name = _ref_name(node["$ref"])
        if name in seen:
            return set()
        return type_tags(schemas, schemas[name], seen | {name})
    if not isinstance(node, dict):
        return set()
    tags: set[str] = set()
    for key in ("oneOf", "anyOf"):
        for alt in node.get(key, []):
            tags |= type_tags(schemas, alt, seen)
    if "allOf" in node:
        for part in node["allOf"]:
            tags |= type_tags(schemas, part, seen)
    type_prop = node.get("properties", {}).get("type")
    if type_prop is not None:
        tags |= _string_values(schemas, type_prop)
    return tags


def _string_values(schemas: dict[str, Any], node: Any) -> set[str]:
    node = resolve(schemas, node)
    out: set[str] = set()
    if "const" in node and isinstance(node["const"], str):
        out.add(node["const"])
    out |= {v for v in node.get("enum", []) if isinstance(v, str)}
    for key in ("anyOf", "oneOf"):
        for alt in node.get(key, []):
            out |= _string_values(schemas, alt)
    return out


def is_nullable(schemas: dict[str, Any], node: Any) -> bool:
    node = resolve(schemas, node)
    alts = node.get("anyOf", []) + node.get("oneOf", [])
    return (
        node.get("type") == "null"
        or node.get("nullable") is True
        or any(is_nullable(schemas, a) for a in alts)
    )


def spec_node(schemas: dict[str, Any], name: str) -> Any:
    """A schema by name, or `Schema#prop` for the (item) schema of one of its properties."""
    name, _, prop = name.partition("#")
    node = schemas[name]
    if prop:
        node = resolve(schemas, spec_properties(schemas, name)[prop])
        node = node.get("items", node)
    return node


def union_alternatives(schemas: dict[str, Any], name: str) -> list[Any]:
    node = schemas[name]
    return node.get("oneOf") or node.get("anyOf") or []


# --------------------------------------------------------------------------------------------------
# Tests: union coverage

UNION_CASES = [
    # (spec schemas whose `type` tags must all be arms of ..., the proto union)
    (["ResponseStreamEvent"], "ResponseStreamEvent"),
    (["Tool"], "Tool"),
    (["ToolChoiceParam"], "ToolChoice"),
    (["Item", "InputItem", "OutputItem", "ItemResource", "ItemField"], "Item"),
    (
        [
            "OutputContent",
            "InputContent",
            "OutputMessageContent",
            "FunctionAndCustomToolCallOutput",
            "Message#content",
        ],
        "ContentPart",
    ),
    (["Annotation"], "Annotation"),
    (["TextResponseFormatConfiguration"], "TextFormat"),
    (["ComputerAction"], "ComputerAction"),
    (["Filters"], "Filter"),
    (["MCPToolCallError"], "McpCallError"),
    (["ToolCallCaller", "ToolCallCallerParam"], "ToolCallCaller"),
    (["ApplyPatchOperationParam"], "ApplyPatchOperation"),
    (["FunctionShellCallOutputOutcomeParam"], "ShellCallOutcome"),
]


@pytest.mark.parametrize(("spec_names", "proto_name"), UNION_CASES, ids=[c[1] for c in UNION_CASES])
def test_union_tags_cover_spec(schemas, messages, opts, spec_names, proto_name):
    union = messages[proto_name]
    assert is_union(union, opts), f"{proto_name} is not marked as a union"
    expected: set[str] = set()
    for name in spec_names:
        expected |= type_tags(schemas, spec_node(schemas, name))
    assert expected, f"no type tags found in {spec_names}"
    missing = expected - arm_tags(union, opts)
    assert not missing, f"{proto_name} lacks arms for {sorted(missing)}"


def test_stream_event_count(schemas, messages, opts):
    tags = type_tags(schemas, schemas["ResponseStreamEvent"])
    assert len(union_alternatives(schemas, "ResponseStreamEvent")) == len(tags) == 58
    assert tags <= arm_tags(messages["ResponseStreamEvent"], opts)


def test_tool_choice_mode_arm(schemas, messages, opts):
    """String alternatives of ToolChoiceParam (none / auto / required) go to an enum scalar arm."""
    choice = messages["ToolChoice"]
    enum_values: set[str] = set()
    for f in arms(choice):
        if f.enum_type is not None:
            enum_values |= enum_json_values(f.enum_type, opts)
    for alt in union_alternatives(schemas, "ToolChoiceParam"):
        alt = resolve(schemas, alt)
        if alt.get("type") == "string":
            missing = set(alt.get("enum", [])) - enum_values
            assert not missing, f"ToolChoice mode arm lacks {sorted(missing)}"


def test_untyped_arms(messages, opts):
    item = messages["Item"]
    keys = {f.name: _ext(f.GetOptions(), opts.untyped_key) for f in arms(item)}
    assert keys["message"] == "role"
    assert keys["item_reference"] == "id"
    names = [f.name for f in arms(item)]
    assert names.index("item_reference") > names.index("message")


# --------------------------------------------------------------------------------------------------
# Tests: object coverage

OBJECT_CASES = [
    ("CreateResponse", "CreateResponseRequest"),
    ("Response", "Response"),
    ("ResponseUsage", "Usage"),
    ("CompactResponseMethodPublicBody", "CompactResponseRequest"),
    ("CompactResource", "CompactResponseResponse"),
    ("TokenCountsBody", "CountInputTokensRequest"),
    ("TokenCountsResource", "CountInputTokensResponse"),
    ("ResponseItemList", "ListInputItemsResponse"),
    ("ResponseTextParam", "TextConfig"),
    ("Reasoning", "ReasoningConfig"),
    ("TextResponseFormatJsonSchema", "TextFormatJsonSchema"),
    ("Error", "Error"),
]


@pytest.mark.parametrize(("spec_name", "proto_name"), OBJECT_CASES, ids=[c[1] for c in OBJECT_CASES])
def test_object_fields_cover_spec(schemas, messages, opts, spec_name, proto_name):
    props = spec_properties(schemas, spec_name)
    assert props, f"no properties found for {spec_name}"
    fields = {json_key(f, opts) for f in messages[proto_name].fields}
    missing = set(props) - fields - {"type"}
    assert not missing, f"{proto_name} lacks {sorted(missing)}"


def test_create_response_has_all_31_properties(schemas, messages, opts):
    props = spec_properties(schemas, "CreateResponse")
    assert len(props) == 31
    request = messages["CreateResponseRequest"]
    for key in props:
        field = next(f for f in request.fields if json_key(f, opts) == key)
        # Request fields are optional so a forwarded request carries exactly what the client sent.
        assert field.has_presence or (_is_repeated(field) and _ext(field.GetOptions(), opts.omit_empty)), key


def test_response_presence_follows_spec(schemas, messages, opts):
    """Keys either spec requires are always emitted: null where both specs allow it (`nullable`), else a
    plain field or a `json_default` (OpenAI's documented default, when Open Responses needs a value where
    OpenAI allows null, or the default is not the type's zero). Keys neither requires are omitted."""
    props = spec_properties(schemas, "Response")
    required = spec_required(schemas, "Response")
    open_schemas = load_spec("openresponses.openapi.json")["components"]["schemas"]
    open_props = spec_properties(open_schemas, "ResponseResource")
    open_required = spec_required(open_schemas, "ResponseResource")
    response = messages["Response"]
    by_key = {json_key(f, opts): f for f in response.fields}
    for key in open_required:
        assert key in by_key, f"Response lacks {key}, which Open Responses requires"
    for key, node in props.items():
        field = by_key[key]
        nullable = bool(_ext(field.GetOptions(), opts.nullable))
        default = _ext(field.GetOptions(), opts.json_default)
        both_null = is_nullable(schemas, node) and (
            key not in open_props or is_nullable(open_schemas, open_props[key])
        )
        if key == "status":
            continue  # always set (the shell says in_progress; upstreams send theirs): no default to invent
        if key in required or key in open_required:
            emitted = nullable or default or _is_repeated(field) or not field.has_presence
            assert emitted, f"Response.{key} is required: it must always be emitted"
            assert not nullable or both_null, f"Response.{key}: null is not valid in both specs"
        else:
            assert not nullable, f"Response.{key} is optional: omit it rather than emit null"
            assert has_presence_or_collection(field), f"Response.{key} is optional"


def test_stream_event_arm_fields(schemas, messages, opts):
    """Each event arm carries every property of its spec schema except `type` / `sequence_number`."""
    union = messages["ResponseStreamEvent"]
    common = {f.name for f in union.fields if f.containing_oneof is None}
    assert "sequence_number" in common
    arm_by_tag = {}
    for f in arms(union):
        if f.message_type is not None and f.name != "unknown":
            arm_by_tag[_ext(f.GetOptions(), opts.tag) or f.name] = f.message_type
    for alt in union_alternatives(schemas, "ResponseStreamEvent"):
        name = _ref_name(alt["$ref"])
        (tag,) = type_tags(schemas, alt)
        arm = arm_by_tag[tag]
        fields = {json_key(f, opts): f for f in arm.fields}
        assert "sequence_number" not in fields, f"{arm.name} repeats the common sequence_number"
        props = spec_properties(schemas, name)
        required = spec_required(schemas, name)
        for key, node in props.items():
            if key in ("type", "sequence_number"):
                continue
            assert key in fields, f"{arm.name} ({tag}) lacks {key}"
            if key in required and is_nullable(schemas, node):
                assert _ext(fields[key].GetOptions(), opts.nullable), f"{arm.name}.{key} should be nullable"


# --------------------------------------------------------------------------------------------------
# Tests: structural rules of docs/contract.md


def test_every_union_has_unknown_arm(messages, opts):
    unions = [d for d in messages.values() if is_union(d, opts)]
    assert len(unions) > 10
    for desc in unions:
        assert [o.name for o in desc.oneofs] == ["kind"], f"{desc.name}: a union has exactly one `oneof kind`"
        unknown = desc.fields_by_name.get("unknown")
        assert unknown is not None and unknown.containing_oneof is not None, f"{desc.name} lacks `unknown`"
        assert unknown.number == 999 and unknown.message_type.full_name == "google.protobuf.Value", desc.name


def test_oneofs_only_in_unions(messages, opts):
    for desc in messages.values():
        real = [o for o in desc.oneofs if not o.name.startswith("_")]
        if real:
            assert is_union(desc, opts), f"{desc.name} has a oneof but is not marked as a union"


def test_every_non_list_message_has_extra_fields(messages, opts):
    for desc in messages.values():
        if is_list(desc, opts):
            repeated = [f for f in desc.fields if _is_repeated(f)]
            assert len(desc.fields) == 1 and len(repeated) == 1, f"list {desc.name} needs one repeated field"
            assert "extra_fields" not in desc.fields_by_name, desc.name
            continue
        extra = desc.fields_by_name.get("extra_fields")
        assert extra is not None, f"{desc.name} lacks extra_fields"
        assert extra.number == 1000, desc.name
        entry = extra.message_type
        assert entry is not None and entry.GetOptions().map_entry, f"{desc.name}.extra_fields is not a map"
        assert entry.fields_by_name["key"].type == FieldDescriptor.TYPE_STRING
        assert entry.fields_by_name["value"].message_type.full_name == "google.protobuf.Value"


def test_union_arms_have_no_type_field(messages, opts):
    for desc in messages.values():
        if not is_union(desc, opts):
            continue
        for f in arms(desc):
            if f.message_type is None or f.name == "unknown" or is_list(f.message_type, opts):
                continue
            if _ext(f.GetOptions(), opts.untyped_key) is not None and _ext(f.GetOptions(), opts.tag) == "":
                continue
            assert "type" not in f.message_type.fields_by_name, f"{f.message_type.name} (arm of {desc.name})"


def test_enums_follow_conventions(files, opts):
    enums: list[EnumDescriptor] = []
    for f in files:
        enums += list(f.enum_types_by_name.values())
    assert enums
    for enum in enums:
        zero = enum.values_by_number[0]
        assert zero.name == f"{_upper_snake(enum.name)}_UNSPECIFIED", enum.name
        for v in enum.values:
            assert v.name.startswith(_upper_snake(enum.name) + "_"), v.name


def test_enum_spellings_match_spec(schemas, files, opts):
    """A few spec enums whose spellings need `enum_json`."""
    enums = {e.name: e for f in files for e in f.enum_types_by_name.values()}
    assert set(schemas["IncludeEnum"]["enum"]) <= enum_json_values(enums["Include"], opts)
    assert set(schemas["ContainerMemoryLimit"]["enum"]) <= enum_json_values(
        enums["ContainerMemoryLimit"], opts
    )
    assert set(schemas["RankerVersionType"]["enum"]) <= enum_json_values(enums["RankerVersion"], opts)
    assert set(schemas["PromptCacheRetentionEnum"]["enum"]) <= enum_json_values(
        enums["PromptCacheRetention"], opts
    )
    assert set(schemas["MessageRole"]["enum"]) <= enum_json_values(enums["MessageRole"], opts)
    assert set(schemas["ResponseErrorCode"]["enum"]) <= enum_json_values(enums["ResponseErrorCode"], opts)


def test_services(files):
    services = {s.name: s for f in files for s in f.services_by_name.values()}
    rpcs = {m.name for m in services["ResponsesService"].methods}
    assert rpcs == {
        "CreateResponse",
        "StreamResponse",
        "GetResponse",
        "StreamGetResponse",
        "DeleteResponse",
        "CancelResponse",
        "ListInputItems",
        "CompactResponse",
        "CountInputTokens",
    }
    assert {m.name for m in services["ModelsService"].methods} == {"ListModels"}


def _leaf_alternatives(
    schemas: dict[str, Any], node: Any, seen: frozenset[str] = frozenset()
) -> Iterator[str]:
    """Names of the object schemas (with a `type` tag) reachable through oneOf / anyOf."""
    if isinstance(node, dict) and "$ref" in node:
        name = _ref_name(node["$ref"])
        if name in seen:
            return
        target = schemas[name]
        if target.get("oneOf") or target.get("anyOf"):
            yield from _leaf_alternatives(schemas, target, seen | {name})
        elif type_tags(schemas, target):
            yield name
        return
    if isinstance(node, dict):
        for key in ("oneOf", "anyOf"):
            for alt in node.get(key, []):
                yield from _leaf_alternatives(schemas, alt, seen)


@pytest.mark.parametrize(("spec_names", "proto_name"), UNION_CASES, ids=[c[1] for c in UNION_CASES])
def test_union_arm_fields_cover_spec(schemas, messages, opts, spec_names, proto_name):
    """Every property of every alternative exists in the arm message its tag selects."""
    union = messages[proto_name]
    by_tag: dict[str, Descriptor] = {}
    for f in arms(union):
        if f.message_type is not None and f.name != "unknown" and not is_list(f.message_type, opts):
            by_tag[_ext(f.GetOptions(), opts.tag) or f.name] = f.message_type
    problems = []
    for spec_name in spec_names:
        for leaf in _leaf_alternatives(schemas, spec_node(schemas, spec_name)):
            for tag in type_tags(schemas, schemas[leaf]):
                fields = {json_key(f, opts) for f in by_tag[tag].fields}
                keys = set(spec_properties(schemas, leaf)) | spec_required(schemas, leaf)
                missing = keys - fields - {"type", "sequence_number"}
                if missing:
                    problems.append(f"{leaf} -> {by_tag[tag].name}: {sorted(missing)}")
    assert not problems, "\n".join(problems)
