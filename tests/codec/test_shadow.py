"""Shadows (codec/shadow.py): the JSON kept for a message decoded within `keeping()`, sent by `dumps`
in place of encoding it, is the same JSON as the encoding, and is given up when the message changed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf.message import Message

from responses_gateway import codec
from responses_gateway.codec import defaults, shadow
from responses_gateway.v1 import events_pb2, request_pb2, response_pb2
from tests.codec.test_spec_examples import JSON_RESPONSES, STREAMS, WITH_BODY, sse_events

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "transcripts" / "openai"


def _openai_objects() -> Iterator[tuple[str, type[Message], Any]]:
    """Every Response and stream event of the recorded OpenAI transcripts and the spec's examples."""
    for path in sorted(TRANSCRIPTS.glob("*.json")):
        found: list[tuple[type[Message], Any]] = []
        _collect(json.loads(path.read_text()), found)
        for i, (kind, data) in enumerate(found):
            yield f"{path.stem}-{i}", kind, data
    for example in JSON_RESPONSES:
        data = json.loads(example.response)
        if isinstance(data, dict) and data.get("object") == "response":
            yield example.id, response_pb2.Response, data
    for example in STREAMS:
        for i, (_, data) in enumerate(sse_events(example.response)):
            yield f"{example.id}-{i}", events_pb2.ResponseStreamEvent, data
    for example in WITH_BODY:
        yield f"{example.id}-request", request_pb2.CreateResponseRequest, example.body


def _collect(x: Any, found: list[tuple[type[Message], Any]]) -> None:
    if isinstance(x, dict):
        if x.get("object") == "response":
            found.append((response_pb2.Response, x))
        elif str(x.get("type", "")).startswith("response.") and "sequence_number" in x:
            found.append((events_pb2.ResponseStreamEvent, x))
        for v in x.values():
            _collect(v, found)
    elif isinstance(x, list):
        for v in x:
            _collect(v, found)


OBJECTS = list(_openai_objects())


def _kept(kind: type[Message], data: Any) -> tuple[Message, bytes, shadow.Shadows]:
    with shadow.keeping():
        msg = codec.loads(kind(), orjson.dumps(data), keep=True)
        shadows = shadow.current()
        assert shadows is not None
        return msg, codec.dumps(msg), shadows


def test_there_are_objects_to_check() -> None:
    kinds = {kind for _, kind, _ in OBJECTS}
    assert len(OBJECTS) > 300 and len(kinds) == 3


@pytest.mark.parametrize(("name", "kind", "data"), OBJECTS, ids=[o[0] for o in OBJECTS])
def test_the_kept_json_is_the_encoding(name: str, kind: type[Message], data: Any) -> None:
    msg, sent, shadows = _kept(kind, data)
    assert shadows.find(msg) is not None, "no shadow was kept"
    shadow._check(orjson.loads(sent), codec.to_json(msg), "")  # the same JSON, numbers as numbers


def test_repairs_what_encode_would_change() -> None:
    data = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1.0,  # an integer field: encode writes 1
        "status": "completed",
        "model": "m",
        "user": None,  # not nullable: encode leaves it out
        "temperature": 1.0,
        "output": [{"role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}],
        "text": {"format": None},  # json_default object: encode fills `format`
        "usage": {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5},
    }
    msg, sent, _ = _kept(response_pb2.Response, data)
    out = orjson.loads(sent)
    assert "user" not in out
    assert type(out["created_at"]) is int and b'"created_at":1,' in sent
    assert out["output"][0]["type"] == "message"  # recognised by `role`, written with its tag
    assert out["text"]["format"] == {"type": "text"}
    assert out["usage"]["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}
    assert out["tools"] == [] and out["parallel_tool_calls"] is True  # left out upstream, always written
    assert b'"temperature":1.0' in sent  # the upstream's own spelling: it was not encoded again
    shadow._check(out, codec.to_json(msg), "")


def test_a_change_said_by_set_number_is_sent() -> None:
    with shadow.keeping():
        msg = codec.loads(response_pb2.Response(), orjson.dumps(_small()), keep=True)
        msg.usage.extra_fields["cost"].number_value = 0.25
        shadow.set_number(msg, ("usage", "cost"), 0.25)
        sent = codec.dumps(msg)
        assert b'"temperature":1.0' in sent  # still the kept JSON
    assert orjson.loads(sent)["usage"]["cost"] == 0.25


def test_a_change_not_said_is_encoded() -> None:
    with shadow.keeping():
        msg = codec.loads(response_pb2.Response(), orjson.dumps(_small()), keep=True)
        msg.model = "changed"
        sent = codec.dumps(msg)
        assert shadow.current().find(msg) is None  # type: ignore[union-attr]
    assert orjson.loads(sent)["model"] == "changed"
    assert b'"temperature":1,' in sent  # encoded: the integral double is written as an integer


def test_a_path_the_json_lacks_drops_the_shadow() -> None:
    with shadow.keeping():
        msg = codec.loads(response_pb2.Response(), orjson.dumps(_small()), keep=True)
        shadow.set_number(msg, ("nowhere", "cost"), 1.0)
        assert shadow.current().find(msg) is None  # type: ignore[union-attr]


def test_nothing_is_kept_outside_keeping_or_without_keep() -> None:
    msg = codec.loads(response_pb2.Response(), orjson.dumps(_small()), keep=True)
    assert shadow.current() is None and b'"temperature":1,' in codec.dumps(msg)
    with shadow.keeping():
        raw = orjson.dumps(_small())
        other = codec.loads(response_pb2.Response(), raw)
        assert shadow.current().find(other) is None  # type: ignore[union-attr]


def test_check_mode_catches_a_wrong_shadow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shadow, "CHECK", True)
    with shadow.keeping():
        msg = codec.loads(response_pb2.Response(), orjson.dumps(_small()), keep=True)
        kept = shadow.current().find(msg)  # type: ignore[union-attr]
        assert kept is not None
        kept.json["model"] = "not what the message says"
        with pytest.raises(shadow.ShadowMismatch, match="/model"):
            codec.dumps(msg)


def test_other_threads_decode_as_always() -> None:
    """While one thread decodes with repair on, another thread's JSON is left as it was."""
    theirs = {"id": "resp_2", "object": "response", "user": None}
    seen: list[dict[str, Any]] = []

    def decode_elsewhere() -> None:
        codec.from_json(response_pb2.Response(), theirs)
        seen.append(theirs)

    defaults.REPAIR.thread = threading.get_ident()
    try:
        worker = threading.Thread(target=decode_elsewhere)
        worker.start()
        worker.join()
    finally:
        defaults.REPAIR.thread = 0
    assert seen and "user" in seen[0] and "tools" not in seen[0]


def _small() -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "model": "m",
        "temperature": 1.0,
        "output": [],
        "usage": {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5},
    }
