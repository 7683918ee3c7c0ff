"""Hosted tools relayed intact from OpenAI-native and Azure deployments: for each recorded transcript
(tests/transcripts/openai/<tool>.json) every item and event the gateway sends equals what the fake sent
(ids aside, which the fake makes fresh per call), the tool reaches the upstream as the client gave it, and
every object validates against the specs.

Spec checks: OpenAI's spec holds every event and item. The Open Responses spec defines none of the hosted
tool items or their events (its `ItemField` is message / function_call / function_call_output / reasoning /
compaction, and its one annotation type `url_citation`), so it checks the events it defines (text, annotations, item events of the item types it
has) and each Response with its output and tools reduced to the types it has (function tools only); the
hosted items and tools themselves are held to OpenAI's schema only.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import openai
import pytest

from responses_gateway.domain.context import DROPPED_HEADER
from tests.fakes.openai_upstream import load_transcript
from tests.providers.conftest import Env, stream
from tests.support.spec import OPEN_RESPONSES_TAG, BothSpecs

# scenario -> the tool the request offers (as a client writes it; upstream must receive it unchanged)
HOSTED: dict[str, dict[str, Any]] = {
    "web_search": {
        "type": "web_search",
        "search_context_size": "medium",
        "user_location": {"type": "approximate", "city": "Paris", "country": "FR"},
    },
    "file_search": {
        "type": "file_search",
        "vector_store_ids": ["vs_68a1b2c3d4e5f6a7b8c9d0e1"],
        "max_num_results": 5,
    },
    "image_generation": {
        "type": "image_generation",
        "partial_images": 2,
        "output_format": "png",
        "quality": "auto",
    },
    "code_interpreter": {"type": "code_interpreter", "container": {"type": "auto"}},
    "computer_use_preview": {
        "type": "computer_use_preview",
        "display_width": 1024,
        "display_height": 768,
        "environment": "browser",
    },
    "shell": {"type": "shell", "environment": {"type": "local"}},
    "apply_patch": {"type": "apply_patch"},
    "local_shell": {"type": "local_shell"},
}
OPEN_RESPONSES_ITEMS = {"message", "function_call", "function_call_output", "reasoning", "compaction"}
LIFECYCLE = ("response.created", "response.in_progress", "response.completed")
_ID_KEYS = ("id", "item_id", "call_id")  # the ids the fake makes fresh per call


@pytest.fixture(scope="module")
def specs() -> BothSpecs:
    return BothSpecs()


def _unid(node: Any, seen: dict[str, str]) -> Any:
    """Ids replaced by their order of first appearance (`<id0>`, ...), so two runs compare equal; null
    fields and empty lists left out: the codec writes an optional null field as absent, and a nullable
    list (a code interpreter call's `outputs: null` while it runs) as `[]`, its proto being a repeated
    field. Whether a required field is there is the spec check's business."""
    if isinstance(node, dict):
        return {
            k: seen.setdefault(v, f"<id{len(seen)}>") if k in _ID_KEYS else _unid(v, seen)
            for k, v in sorted(node.items())
            if v is not None and v != []
        }
    if isinstance(node, list):
        return [_unid(v, seen) for v in node]
    return node


def _known_annotations(node: Any) -> Any:
    """Open Responses has one annotation type, `url_citation`: file citations are OpenAI's only."""
    if isinstance(node, dict):
        return {
            k: [a for a in v if a.get("type") == "url_citation"]
            if k == "annotations"
            else _known_annotations(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_known_annotations(v) for v in node]
    return node


def _open_responses_view(response: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = _known_annotations(copy.deepcopy(response))
    out["output"] = [i for i in out.get("output", []) if i.get("type") in OPEN_RESPONSES_ITEMS]
    out["tools"] = [t for t in out.get("tools", []) if t.get("type") == "function"]
    return out


def check_both(specs: BothSpecs, event: dict[str, Any]) -> None:
    specs.openai.check_event(event)
    tag = OPEN_RESPONSES_TAG.get(event["type"], event["type"])
    if "response" in event:
        specs.openai.check("Response", event["response"])
        specs.open_responses.check("ResponseResource", _open_responses_view(event["response"]))
        return
    item = event.get("item")
    if event.get("annotation", {}).get("type", "url_citation") != "url_citation":
        return
    if tag in specs.open_responses.event_schema and (item is None or item["type"] in OPEN_RESPONSES_ITEMS):
        specs.open_responses.check_event(_known_annotations({**event, "type": tag}))


def _model(adapter: str, scenario: str) -> str:
    return f"{'oa' if adapter == 'openai' else 'az'}-{scenario}"


@pytest.fixture(params=["openai", "azure"])
def native(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("scenario", list(HOSTED))
def test_stream_relayed_intact(
    env: Env, http: httpx.Client, specs: BothSpecs, native: str, scenario: str
) -> None:
    tool = HOSTED[scenario]
    resp, events = stream(http, {"model": _model(native, scenario), "input": "go", "tools": [tool]})
    assert resp.status_code == 200, resp.text
    (sent,) = [r.body for r in env.openai.create_requests]
    assert sent["tools"] == [tool]  # the hosted tool goes upstream exactly as given
    if native == "azure":
        assert [s["path"] for s in env.azure.seen] == ["/openai/v1/responses"]
    for event in events:
        check_both(specs, event)
    recorded = load_transcript(scenario)["stream"]
    assert [e["type"] for e in events] == [e["type"] for e in recorded]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    seen_gw: dict[str, str] = {}
    seen_rec: dict[str, str] = {}
    for got, want in zip(events, recorded, strict=True):
        if got["type"] in LIFECYCLE:
            # The Response shell echoes the request (model, tools); what the tools produced must match.
            for key in ("output", "tool_usage"):
                assert _unid(got["response"][key], seen_gw) == _unid(want["response"][key], seen_rec), key
            continue
        assert _unid(got, seen_gw) == _unid(want, seen_rec), got["type"]


@pytest.mark.parametrize("scenario", list(HOSTED))
def test_unary_relayed_intact(
    env: Env, http: httpx.Client, client: openai.OpenAI, specs: BothSpecs, native: str, scenario: str
) -> None:
    body = {"model": _model(native, scenario), "input": "go", "tools": [HOSTED[scenario]]}
    resp = http.post("/responses", json=body)
    assert resp.status_code == 200, resp.text
    got = resp.json()
    specs.openai.check("Response", got)
    specs.open_responses.check("ResponseResource", _open_responses_view(got))
    want = load_transcript(scenario)["response"]
    assert _unid(got["output"], {}) == _unid(want["output"], {})
    assert [i["type"] for i in got["output"]] == [i["type"] for i in want["output"]]
    # The SDK reads the same body into its typed items (its own validation of each hosted item).
    typed = client.responses.create(**body)  # type: ignore[call-overload]
    assert [i.type for i in typed.output] == [i["type"] for i in want["output"]]


def test_partial_images_streamed(env: Env, client: openai.OpenAI) -> None:
    """`partial_images` reaches OpenAI, and each partial image comes back as its own event, in order."""
    with client.responses.stream(
        model="oa-image_generation", input="draw", tools=[{"type": "image_generation", "partial_images": 2}]
    ) as s:
        events = list(s)
    partial = [e for e in events if e.type == "response.image_generation_call.partial_image"]
    assert [e.partial_image_index for e in partial] == [0, 1]
    assert all(e.partial_image_b64 for e in partial)
    final = s.get_final_response()
    (call,) = [i for i in final.output if i.type == "image_generation_call"]
    assert call.result and call.status == "completed"
    assert env.openai.create_requests[0].body["tools"][0]["partial_images"] == 2


def test_computer_call_output_goes_back(env: Env, http: httpx.Client) -> None:
    """The next turn's `computer_call_output` (a screenshot) and the acknowledged safety check reach
    OpenAI intact."""
    tool = HOSTED["computer_use_preview"]
    first = http.post(
        "/responses", json={"model": "oa-computer_use_preview", "input": "search", "tools": [tool]}
    )
    assert first.status_code == 200, first.text
    (call,) = [i for i in first.json()["output"] if i["type"] == "computer_call"]
    reply = {
        "type": "computer_call_output",
        "call_id": call["call_id"],
        "acknowledged_safety_checks": [
            {"id": c["id"], "code": c["code"]} for c in call["pending_safety_checks"]
        ],
        "output": {"type": "computer_screenshot", "image_url": "data:image/png;base64,iVBORw0KGgo="},
    }
    second = http.post(
        "/responses",
        json={
            "model": "oa-text",
            "previous_response_id": first.json()["id"],
            "input": [reply],
            "tools": [tool],
        },
    )
    assert second.status_code == 200, second.text
    sent = env.openai.create_requests[-1].body
    assert reply in sent["input"]


# ------------------------------------------------------------------------------------------ mapped
def _final(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert events[-1]["type"] == "response.completed", events[-1]
    final: dict[str, Any] = events[-1]["response"]
    return final


def test_web_search_on_anthropic(env: Env, http: httpx.Client, specs: BothSpecs) -> None:
    tool = {
        "type": "web_search",
        "user_location": {"type": "approximate", "city": "Paris", "country": "FR"},
        "filters": {"allowed_domains": ["example.org"]},
    }
    resp, events = stream(http, {"model": "claude-web_search", "input": "good news?", "tools": [tool]})
    assert resp.status_code == 200, resp.text
    (sent,) = [r.body for r in env.anthropic.requests]
    assert sent["tools"] == [
        {
            "type": "web_search_20250305",
            "name": "web_search",
            "user_location": {"type": "approximate", "city": "Paris", "country": "FR"},
            "allowed_domains": ["example.org"],
        }
    ]
    for event in events:
        check_both(specs, event)
    types = [e["type"] for e in events]
    assert [t for t in types if t.startswith("response.web_search_call.")] == [
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
    ]
    output = _final(events)["output"]
    assert [i["type"] for i in output] == ["message", "web_search_call", "message"]
    call = output[1]
    assert call["status"] == "completed" and call["id"].startswith("ws_")
    assert call["action"]["query"] == "positive news today"
    assert [s["url"] for s in call["action"]["sources"]] == [
        "https://www.example.org/good-news",
        "https://news.example.com/trees",
    ]
    part = output[2]["content"][0]
    assert part["text"] == "A volunteer team replanted 10,000 trees along the river."
    assert part["annotations"] == [
        {
            "type": "url_citation",
            "url": "https://www.example.org/good-news",
            "title": "Volunteers replant the riverbank",
            "start_index": 0,
            "end_index": len(part["text"]),
        }
    ]
    added = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    assert [a["annotation"] for a in added] == part["annotations"]
    assert added[0]["output_index"] == 2 and added[0]["item_id"] == output[2]["id"]


def test_web_search_on_gemini(env: Env, http: httpx.Client, specs: BothSpecs) -> None:
    resp, events = stream(
        http, {"model": "gem-google_search", "input": "euro 2024?", "tools": [{"type": "web_search_preview"}]}
    )
    assert resp.status_code == 200, resp.text
    (sent,) = [r.body for r in env.gemini.requests]
    assert sent["tools"] == [{"google_search": {}}]
    for event in events:
        check_both(specs, event)
    output = _final(events)["output"]
    assert [i["type"] for i in output] == ["message", "web_search_call"]
    text = output[0]["content"][0]["text"]
    cites = output[0]["content"][0]["annotations"]
    uefa = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AbF9wXE"
    aljazeera = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/BcG0xYF"
    assert [(c["url"], c["title"]) for c in cites] == [
        (uefa, "uefa.com"),
        (uefa, "uefa.com"),
        (aljazeera, "aljazeera.com"),
    ]
    # byte offsets turned into character offsets (the en dash is 3 bytes, one character)
    assert text[cites[0]["start_index"] : cites[0]["end_index"]] == "Spain won Euro 2024"
    assert text[cites[1]["start_index"] : cites[1]["end_index"]] == "beating England 2\u20131 in the final."
    call = output[1]
    assert call["action"]["queries"] == ["who won euro 2024", "euro 2024 final score"]
    assert [s["url"] for s in call["action"]["sources"]] == [uefa, aljazeera]


def test_computer_use_on_anthropic_round_trip(env: Env, http: httpx.Client, specs: BothSpecs) -> None:
    tool = HOSTED["computer_use_preview"]
    resp, events = stream(http, {"model": "claude-computer_use", "input": "search", "tools": [tool]})
    assert resp.status_code == 200, resp.text
    first = env.anthropic.requests[0]
    assert first.body["tools"] == [
        {"type": "computer_20250124", "name": "computer", "display_width_px": 1024, "display_height_px": 768}
    ]
    assert "computer-use-2025-01-24" in first.headers["anthropic-beta"]
    for event in events:
        check_both(specs, event)
    final = _final(events)
    (call,) = [i for i in final["output"] if i["type"] == "computer_call"]
    assert call["call_id"] == "toolu_01CuA7bN3mK9pL2qR5sT8vW"
    assert call["action"] == {"type": "click", "button": "left", "x": 156, "y": 50}
    assert call["pending_safety_checks"] == []
    # Next turn: the screenshot goes back as a tool_result with the image (stateless: items replayed).
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    history = [
        {"role": "user", "content": "search"},
        call,
        {
            "type": "computer_call_output",
            "call_id": call["call_id"],
            "output": {"type": "computer_screenshot", "image_url": f"data:image/png;base64,{png}"},
        },
    ]
    second = http.post(
        "/responses", json={"model": "claude-text", "input": history, "tools": [tool], "store": False}
    )
    assert second.status_code == 200, second.text
    messages = env.anthropic.requests[-1].body["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": [
            {
                "type": "tool_use",
                "id": call["call_id"],
                "name": "computer",
                "input": {"action": "left_click", "coordinate": [156, 50]},
            }
        ],
    }
    assert messages[2] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": call["call_id"],
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}
                ],
            }
        ],
    }


UNMAPPED = {
    "anthropic": [
        "file_search",
        "image_generation",
        "code_interpreter",
        "shell",
        "apply_patch",
        "local_shell",
    ],
    "gemini": [
        "file_search",
        "image_generation",
        "computer_use_preview",
        "shell",
        "apply_patch",
        "local_shell",
    ],
}


@pytest.mark.parametrize(
    ("provider", "scenario"), [(p, s) for p, names in UNMAPPED.items() for s in names], ids=lambda v: str(v)
)
def test_unmapped_hosted_tool_is_a_400_or_dropped(
    env: Env, http: httpx.Client, provider: str, scenario: str
) -> None:
    prefix = {"anthropic": "claude", "gemini": "gem"}[provider]
    fake = env.anthropic if provider == "anthropic" else env.gemini
    body = {"input": "go", "tools": [HOSTED[scenario]]}
    refused = http.post("/responses", json={**body, "model": f"{prefix}-text"})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert f"`{scenario}` tool" in error["message"] and provider.capitalize() in error["message"]
    assert error["param"] == "tools" and fake.requests == []
    dropped = http.post("/responses", json={**body, "model": f"d{prefix}-text"})
    assert dropped.status_code == 200, dropped.text
    assert "tools" in dropped.headers[DROPPED_HEADER].split(",")
    assert "tools" not in fake.requests[-1].body
