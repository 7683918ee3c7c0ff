"""Nothing is lost (docs/contract.md): what the typed model does not know survives the codec unchanged.

Unknown keys at every level, unknown `type`s of items / tools / content parts / annotations / events, unknown
enum strings, untyped message items and `{"id": ...}` references go JSON → proto → JSON, and also through
binary protobuf (what the store keeps), and come back as they were. Wrong types are rejected with a CodecError
whose `param` is OpenAI's path to the offending value.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.message import Message

from responses_gateway import codec
from responses_gateway.v1 import events_pb2, items_pb2, request_pb2, response_pb2, tools_pb2
from responses_gateway.v1 import responses_service_pb2 as rs
from tests.codec._normalize import Kind, assert_same_modulo

Create = request_pb2.CreateResponseRequest
Event = events_pb2.ResponseStreamEvent

UNKNOWN: dict[str, Any] = {"nested": {"list": [1, 2.5, "x", None, True, {"deep": []}]}, "n": None}

# The keys every Response carries (docs/contract.md: nullable and json_default fields), so that a Response
# case can survive with no normalization at all.
ALWAYS: dict[str, Any] = {
    "completed_at": None,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "text": {"format": {"type": "text"}},
    "max_output_tokens": None,
    "max_tool_calls": None,
    "prompt_cache_key": None,
    "safety_identifier": None,
    "top_logprobs": 0,
    "service_tier": "auto",
    "store": True,
    "background": False,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "truncation": "disabled",
}

CASES: list[tuple[str, type[Message], Any]] = [
    # --- unknown keys ---
    ("request top-level keys", Create, {"model": "m", "input": "hi", "future_param": UNKNOWN, "another": 7}),
    (
        "keys inside items",
        Create,
        {
            "input": [
                {"type": "message", "role": "user", "content": "hi", "new_item_key": UNKNOWN},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "x": [1]},
                {"type": "function_call_output", "call_id": "c1", "output": "42", "extra": {"a": "b"}},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "e", "new": 1},
            ]
        },
    ),
    (
        "keys inside content parts and nested objects",
        Create,
        {
            "input": [
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "a", "new_part_key": UNKNOWN},
                        {
                            "type": "input_image",
                            "image_url": "https://x/y.png",
                            "detail": "high",
                            "prompt_cache_breakpoint": {"mode": "explicit", "new": "v"},
                        },
                    ],
                }
            ],
            "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}, "z": 1}},
            "reasoning": {"effort": "low", "new_reasoning_knob": 3},
        },
    ),
    (
        "keys inside tools",
        Create,
        {
            "tools": [
                {
                    "type": "function",
                    "name": "f",
                    "parameters": {"type": "object"},
                    "strict": True,
                    "new": UNKNOWN,
                },
                {
                    "type": "web_search",
                    "user_location": {"type": "approximate", "city": "Paris", "new_loc": 1},
                    "filters": {"allowed_domains": ["a.com"], "blocked": ["b.com"]},
                },
                {
                    "type": "mcp",
                    "server_label": "s",
                    "require_approval": {"never": {"tool_names": ["t"], "k": 1}},
                },
                {
                    "type": "namespace",
                    "name": "ns",
                    "description": "d",
                    "tools": [{"type": "custom", "name": "c", "q": 2}],
                },
            ],
            "tool_choice": {"type": "function", "name": "f", "new_choice_key": True},
        },
    ),
    (
        "keys inside events and their response",
        Event,
        {
            "type": "response.output_text.delta",
            "sequence_number": 4,
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "delta": "Hi",
            "logprobs": [{"token": "Hi", "logprob": -0.5, "new_lp": 1}],
            "obfuscation": "abc",
            "new_event_key": UNKNOWN,
        },
    ),
    (
        "keys inside a response.completed event",
        Event,
        {
            "type": "response.completed",
            "sequence_number": 9,
            "response": {
                **ALWAYS,
                "id": "resp_1",
                "object": "response",
                "created_at": 1,
                "status": "completed",
                "error": None,
                "incomplete_details": None,
                "instructions": None,
                "model": "m",
                "output": [
                    {
                        "type": "message",
                        "id": "msg_1",
                        "status": "completed",
                        "role": "assistant",
                        "content": [
                            {
                                "type": "output_text",
                                "text": "t",
                                "annotations": [
                                    {
                                        "type": "url_citation",
                                        "url": "u",
                                        "start_index": 0,
                                        "end_index": 1,
                                        "title": "T",
                                        "k": 1,
                                    }
                                ],
                                "logprobs": [],
                                "new_part_key": 2,
                            }
                        ],
                        "new_item_key": 3,
                    }
                ],
                "parallel_tool_calls": True,
                "temperature": 1,
                "top_p": 1,
                "tool_choice": "auto",
                "tools": [],
                "metadata": {},
                "usage": {
                    "input_tokens": 1,
                    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0, "new_detail": 5},
                    "output_tokens": 1,
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": 2,
                },
                "new_response_key": UNKNOWN,
            },
        },
    ),
    # --- unknown types ---
    (
        "unknown item, content part and annotation types",
        Create,
        {
            "input": [
                {"type": "hologram_call", "id": "hc_1", "payload": UNKNOWN},
                {"type": "message", "role": "user", "content": [{"type": "input_smell", "smell": "rose"}]},
                {
                    "type": "message",
                    "role": "assistant",
                    "id": "msg_1",
                    "status": "completed",
                    "content": [
                        {
                            "type": "output_text",
                            "text": "t",
                            "annotations": [{"type": "footnote", "n": 1}],
                            "logprobs": [],
                        }
                    ],
                },
            ]
        },
    ),
    (
        "unknown tool, tool choice and text format types",
        Create,
        {
            "tools": [{"type": "teleporter", "range_km": 5, "targets": ["moon"]}],
            "tool_choice": {"type": "teleporter"},
            "text": {"format": {"type": "yaml", "indent": 2}},
        },
    ),
    (
        "unknown nested union types",
        Create,
        {
            "tools": [
                {
                    "type": "file_search",
                    "vector_store_ids": ["vs"],
                    "filters": {"type": "regex", "key": "k", "value": "v"},
                },
                {"type": "code_interpreter", "container": {"type": "gpu", "count": 1}},
                {"type": "shell", "environment": {"type": "vm", "image": "x"}},
                {"type": "custom", "name": "c", "format": {"type": "peg", "definition": "d"}},
            ],
            "input": [
                {
                    "type": "computer_call",
                    "id": "cu_1",
                    "call_id": "c",
                    "action": {"type": "levitate"},
                    "pending_safety_checks": [],
                    "status": "completed",
                },
                {
                    "type": "web_search_call",
                    "id": "ws_1",
                    "status": "completed",
                    "action": {"type": "summon", "q": "x"},
                },
            ],
        },
    ),
    (
        "unknown event type",
        Event,
        {"type": "response.hologram.delta", "sequence_number": 3, "item_id": "x", "delta": UNKNOWN},
    ),
    # --- unknown enum strings ---
    (
        "unknown enum strings",
        Create,
        {
            "include": ["file_search_call.results", "hologram_call.frames"],
            "service_tier": "ludicrous",
            "truncation": "smart",
            "prompt_cache_retention": "forever",
            "tool_choice": "sometimes",
            "reasoning": {"effort": "galactic", "summary": "haiku"},
            "text": {"verbosity": "chatty"},
            "input": [
                {
                    "type": "message",
                    "role": "narrator",
                    "content": [{"type": "input_image", "file_id": "f", "detail": "ultra"}],
                },
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}", "status": "paused"},
            ],
            "tools": [
                {
                    "type": "web_search_preview",
                    "search_context_size": "huge",
                    "search_content_types": ["text", "smell"],
                },
                {
                    "type": "image_generation",
                    "quality": "retina",
                    "output_format": "gif",
                    "background": "plaid",
                },
                {
                    "type": "mcp",
                    "server_label": "s",
                    "require_approval": "sometimes",
                    "connector_id": "connector_x",
                },
                {"type": "function", "name": "f", "allowed_callers": ["robot"]},
            ],
        },
    ),
    (
        "unknown enum strings in a response",
        response_pb2.Response,
        {
            **ALWAYS,
            "usage": {
                "input_tokens": 0,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": 0,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 0,
            },
            "id": "resp_1",
            "object": "response",
            "created_at": 1,
            "status": "hibernating",
            "error": {"code": "cosmic_ray", "message": "bit flip"},
            "incomplete_details": {"reason": "bored"},
            "instructions": None,
            "model": "m",
            "output": [
                {
                    "type": "web_search_call",
                    "id": "ws",
                    "status": "pondering",
                    "action": {"type": "search", "query": "q"},
                }
            ],
            "parallel_tool_calls": False,
            "temperature": 0.5,
            "top_p": 0.5,
            "tool_choice": "auto",
            "tools": [],
            "metadata": {},
            "truncation": "auto",
        },
    ),
    # --- untyped shapes ---
    ("conversation by object", Create, {"conversation": {"id": "conv_1"}}),
    ("conversation by id", Create, {"conversation": "conv_1"}),
    (
        "mcp allowed tools as a list",
        Create,
        {"tools": [{"type": "mcp", "server_label": "s", "allowed_tools": ["a", "b"]}]},
    ),
    (
        "mcp allowed tools as a filter",
        Create,
        {"tools": [{"type": "mcp", "server_label": "s", "allowed_tools": {"read_only": True}}]},
    ),
    ("input as a string", Create, {"input": "just text"}),
    (
        "prompt variables",
        Create,
        {"prompt": {"id": "p", "variables": {"a": "x", "b": {"type": "input_text", "text": "y"}}}},
    ),
    (
        "count tokens request",
        rs.CountInputTokensRequest,
        {"model": "m", "input": "hi", "personality": "wry", "new": 1},
    ),
    (
        "compact request",
        rs.CompactResponseRequest,
        {"model": "m", "input": [{"type": "compaction", "encrypted_content": "e"}], "new": 1},
    ),
    (
        "an item by itself",
        items_pb2.Item,
        {
            "type": "mcp_call",
            "id": "m",
            "server_label": "s",
            "name": "n",
            "arguments": "{}",
            "error": "boom",
            "new": 1,
        },
    ),
    (
        "a tool by itself",
        tools_pb2.Tool,
        {
            "type": "computer_use_preview",
            "environment": "browser",
            "display_width": 1,
            "display_height": 2,
            "new": 1,
        },
    ),
]

# Untyped arms come back with their tag (docs/contract.md, "Unions": "The arm is emitted with its tag").
TAGGED_CASES: list[tuple[str, type[Message], Any]] = [
    ("untyped message item", Create, {"input": [{"role": "user", "content": "hi"}]}),
    (
        "untyped message item with parts and unknown keys",
        Create,
        {"input": [{"role": "developer", "content": [{"type": "input_text", "text": "x"}], "new": UNKNOWN}]},
    ),
    ("item reference", Create, {"input": [{"id": "msg_123"}, {"id": "fc_1", "new": 2}]}),
    ("item reference with a null type", Create, {"input": [{"id": "msg_123", "type": None}]}),
]


def _both_ways(message_type: type[Message], data: Any) -> tuple[Any, Any]:
    """(JSON → proto → JSON, JSON → proto → binary → proto → JSON)."""
    msg = codec.from_json(message_type(), data)
    via_binary = message_type.FromString(msg.SerializeToString())
    return codec.to_json(msg), codec.to_json(via_binary)


@pytest.mark.parametrize(("message_type", "data"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_survives_unchanged(message_type: type[Message], data: Any) -> None:
    direct, via_binary = _both_ways(message_type, data)
    assert_same_modulo(data, direct)  # no normalization at all
    assert_same_modulo(data, via_binary)
    assert direct == data and via_binary == data


@pytest.mark.parametrize(
    ("message_type", "data"), [c[1:] for c in TAGGED_CASES], ids=[c[0] for c in TAGGED_CASES]
)
def test_untyped_shapes_survive_with_their_tag(message_type: type[Message], data: Any) -> None:
    direct, via_binary = _both_ways(message_type, data)
    for out in (direct, via_binary):
        norms = assert_same_modulo(data, out, frozenset({Kind.ADDED_TAG}))
        assert norms and all(n.kind is Kind.ADDED_TAG for n in norms)


def test_an_unknown_event_gets_the_required_sequence_number() -> None:
    data = {"type": "response.future", "data": [1, 2]}
    for out in _both_ways(Event, data):
        norms = assert_same_modulo(data, out, frozenset({Kind.ADDED_DEFAULT}))
        assert [(n.path, n.value) for n in norms] == [("sequence_number", "0")]


def test_untyped_arms_decode_to_the_right_arm() -> None:
    msg = codec.from_json(Create(), {"input": [{"role": "user", "content": "hi"}, {"id": "msg_1"}]})
    message, reference = msg.input.items.items
    assert message.WhichOneof("kind") == "message" and message.message.content.text == "hi"
    assert reference.WhichOneof("kind") == "item_reference" and reference.item_reference.id == "msg_1"
    assert codec.to_json(msg)["input"] == [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "item_reference", "id": "msg_1"},
    ]


def test_unknown_things_land_where_the_contract_says() -> None:
    msg = codec.from_json(
        Create(),
        {
            "future": 1,
            "service_tier": "ludicrous",
            "tools": [{"type": "teleporter"}],
            "input": [{"type": "message", "role": "user", "content": "hi", "mood": "happy"}],
        },
    )
    assert set(msg.extra_fields) == {"future", "service_tier"}
    assert not msg.HasField("service_tier")
    assert msg.tools[0].WhichOneof("kind") == "unknown"
    assert set(msg.input.items.items[0].message.extra_fields) == {"mood"}
    event = codec.from_json(Event(), {"type": "response.future", "sequence_number": 5, "x": 1})
    assert event.sequence_number == 5 and event.WhichOneof("kind") == "unknown"
    assert "sequence_number" not in event.unknown.struct_value.fields


# --- errors: CodecError.param is OpenAI's path to the value ----------------------------------------------

MSG = {"type": "message", "role": "user"}
ERRORS: list[tuple[type[Message], Any, str]] = [
    (Create, {"model": 5}, "model"),
    (Create, {"temperature": "hot"}, "temperature"),
    (Create, {"stream": "yes"}, "stream"),
    (Create, {"top_logprobs": 1.5}, "top_logprobs"),
    (Create, {"max_output_tokens": 2**64}, "max_output_tokens"),
    (Create, {"metadata": {"k": 1}}, "metadata.k"),
    (Create, {"metadata": ["k"]}, "metadata"),
    (Create, {"include": ["file_search_call.results", 5]}, "include"),
    (
        Create,
        {
            "input": [
                {**MSG, "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": 1}]}
            ]
        },
        "input[0].content[1].text",
    ),
    (
        Create,
        {"input": [MSG, {**MSG, "content": [{"type": "input_image", "detail": 3}]}]},
        "input[1].content[0].detail",
    ),
    (
        Create,
        {
            "input": [
                {
                    **MSG,
                    "content": [{"type": "input_text", "text": "a", "prompt_cache_breakpoint": {"mode": 1}}],
                }
            ]
        },
        "input[0].content[0].prompt_cache_breakpoint.mode",
    ),
    (Create, {"input": [{"role": "user", "content": "x", "status": ["completed"]}]}, "input[0].status"),
    (
        Create,
        {"input": [MSG, {"type": "function_call", "call_id": "c", "name": "f", "arguments": {"a": 1}}]},
        "input[1].arguments",
    ),
    (
        Create,
        {
            "input": [
                {"type": "computer_call", "id": "c", "call_id": "c", "action": {"type": "click", "x": "1"}}
            ]
        },
        "input[0].action.x",
    ),
    (
        Create,
        {"input": [{"type": "shell_call", "call_id": "c", "action": {"commands": "ls"}}]},
        "input[0].action.commands",
    ),
    (
        Create,
        {
            "input": [
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [
                        {
                            "type": "output_text",
                            "text": "",
                            "annotations": [],
                            "logprobs": [{"token": "a", "logprob": 0, "bytes": [2**64 - 1]}],
                        }
                    ],
                }
            ]
        },
        "input[0].content[0].logprobs[0].bytes",
    ),
    (Create, {"tools": [{"type": "function", "name": "f", "parameters": []}]}, "tools[0].parameters"),
    (
        Create,
        {
            "tools": [
                {"type": "function", "name": "f"},
                {"type": "mcp", "server_label": "s", "headers": {"h": 1}},
            ]
        },
        "tools[1].headers.h",
    ),
    (
        Create,
        {"tools": [{"type": "namespace", "name": "n", "tools": [{"type": "function", "name": 7}]}]},
        "tools[0].tools[0].name",
    ),
    (
        Create,
        {
            "tools": [
                {
                    "type": "file_search",
                    "vector_store_ids": ["v"],
                    "filters": {"type": "and", "filters": [{"type": "eq", "key": 1}]},
                }
            ]
        },
        "tools[0].filters.filters[0].key",
    ),
    (Create, {"tool_choice": {"type": "mcp", "server_label": 1}}, "tool_choice.server_label"),
    (Create, {"text": {"format": {"type": "json_schema", "name": "n", "schema": "s"}}}, "text.format.schema"),
    (Create, {"reasoning": {"effort": 5}}, "reasoning.effort"),
    (
        Create,
        {"prompt": {"id": "p", "variables": {"v": {"type": "input_text", "text": 5}}}},
        "prompt.variables.v.text",
    ),
    (Create, {"stream_options": {"include_obfuscation": "no"}}, "stream_options.include_obfuscation"),
    (Create, {"conversation": {"id": 5}}, "conversation.id"),
    (Create, {"future": 10**400}, "future"),
    (
        rs.CountInputTokensRequest,
        {"input": [{**MSG, "content": [{"type": "input_file", "file_id": 1}]}]},
        "input[0].content[0].file_id",
    ),
    (
        rs.CompactResponseRequest,
        {"input": [{"type": "compaction", "encrypted_content": None, "id": 1}]},
        "input[0].id",
    ),
    (Event, {"type": "response.output_text.delta", "sequence_number": "1"}, "sequence_number"),
    (Event, {"type": "response.output_item.added", "item": {"type": "message", "role": 1}}, "item.role"),
]


@pytest.mark.parametrize(("message_type", "data", "param"), ERRORS, ids=[e[2] for e in ERRORS])
def test_wrong_types_name_the_param(message_type: type[Message], data: Any, param: str) -> None:
    with pytest.raises(codec.CodecError) as err:
        codec.from_json(message_type(), data)
    assert err.value.param == param
    assert param in str(err.value)


@pytest.mark.parametrize("body", [[], "text", 5, None, True])
def test_a_body_that_is_not_an_object_has_no_param(body: Any) -> None:
    with pytest.raises(codec.CodecError) as err:
        codec.from_json(Create(), body)
    assert err.value.param is None


def test_loads_rejects_bad_json() -> None:
    with pytest.raises(codec.CodecError) as err:
        codec.loads(Create(), b'{"model": ')
    assert err.value.param is None
    assert codec.loads(Create(), b'{"model": "m", "x": [1]}') == codec.from_json(
        Create(), {"model": "m", "x": [1]}
    )
