"""What the tool tests share: spec checks of everything the gateway emits (OpenAI's spec always; the
Open Responses spec where it defines the objects — it has no tool search or MCP items), and small
readers of responses and of what the scripted model was sent."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.support.spec import BothSpecs
from tests.support.sse import sse_events

SPECS = BothSpecs()
OPENAI_ONLY = ("tool_search", "mcp_", "response.mcp", '"type": "mcp"', '"namespace"', "defer_loading")


def check(payload: dict[str, Any], *, event: bool) -> None:
    if event:
        SPECS.openai.check_event(payload)
    else:
        SPECS.openai.check("Response", payload)
    text = json.dumps(payload)
    if any(w in text for w in OPENAI_ONLY):
        return
    if event:
        SPECS.open_responses.check_event(payload)
    else:
        SPECS.open_responses.check("ResponseResource", payload)


def stream(http: httpx.Client, path: str = "/responses", **body: Any) -> list[dict[str, Any]]:
    with http.stream("POST", path, json={"stream": True, **body}) as r:
        assert r.status_code == 200, r.read()
        events = sse_events(r)
    for e in events:
        check(e, event=True)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def create(http: httpx.Client, **body: Any) -> dict[str, Any]:
    r = http.post("/responses", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    check(out, event=False)
    return out


def kinds(response: dict[str, Any]) -> list[str]:
    return [i["type"] for i in response["output"]]


def text_of(response: dict[str, Any]) -> str:
    return "".join(c["text"] for i in response["output"] if i["type"] == "message" for c in i["content"])


def offered(body: dict[str, Any]) -> list[str]:
    """The tool names an Anthropic request offered."""
    return [t["name"] for t in body.get("tools", [])]


def tool_results(body: dict[str, Any]) -> list[str]:
    out = []
    for msg in body["messages"]:
        for block in msg["content"] if isinstance(msg["content"], list) else []:
            if block.get("type") == "tool_result":
                c = block.get("content")
                out.append(c if isinstance(c, str) else json.dumps(c))
    return out
