"""OpenAI's hosted tools on Anthropic (pure): the ones Anthropic has an equivalent of.

- web search (`web_search`, `web_search_preview` and their dated names) → Anthropic's server tool
  `web_search_20250305`. Its `server_tool_use` + `web_search_tool_result` blocks become one
  `web_search_call` item (the query as its search action, the result URLs as its sources); the
  `web_search_result_location` citations on text become `url_citation` annotations.
- computer use (`computer_use_preview`) → Anthropic's `computer_20250124` tool with the display size; its
  `tool_use` blocks become `computer_call` items (Anthropic's action spelled as OpenAI's), and a
  `computer_call_output` screenshot goes back as a `tool_result` with the image.

Any other hosted tool is left to `Unsupported.function_tools`, which refuses it naming tool and provider
(or drops it with `drop_params`).
"""

from __future__ import annotations

from typing import Any

import orjson

from responses_gateway import codec
from responses_gateway.contract.ids import new_id
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.stream_builder import StreamBuilder
from responses_gateway.v1 import content_pb2, events_pb2, items_pb2, request_pb2

Event = events_pb2.ResponseStreamEvent

WEB_SEARCH = "web_search_20250305"
COMPUTER = "computer_20250124"
COMPUTER_BETA = "computer-use-2025-01-24"  # the `anthropic-beta` the computer tool needs
_WEB_KINDS = frozenset(
    {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}
)
_COMPUTER_KINDS = frozenset({"computer_use_preview", "computer"})
# The hosted tool kinds this module maps (the function-tool map leaves them to it).
KINDS = _WEB_KINDS | _COMPUTER_KINDS
INPUT_KINDS = frozenset({"web_search_call", "computer_call", "computer_call_output"})
_LOCATION_KEYS = ("city", "region", "country", "timezone")
SCROLL_PX = 100  # pixels of one scroll "click": Anthropic counts clicks, OpenAI pixels


# ------------------------------------------------------------------------------------------ request
def _web_search_spec(tool: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": WEB_SEARCH, "name": "web_search"}
    location = tool.get("user_location") or {}
    if location:
        spec["user_location"] = {
            "type": "approximate",
            **{k: location[k] for k in _LOCATION_KEYS if location.get(k)},
        }
    domains = (tool.get("filters") or {}).get("allowed_domains")
    if domains:
        spec["allowed_domains"] = list(domains)
    # `search_context_size` is a hint Anthropic has no knob for; searching still works without it.
    return spec


def _computer_spec(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": COMPUTER,
        "name": "computer",
        "display_width_px": int(tool.get("display_width") or 1024),
        "display_height_px": int(tool.get("display_height") or 768),
    }


def take_tools(
    request: request_pb2.CreateResponseRequest,
) -> tuple[request_pb2.CreateResponseRequest, list[dict[str, Any]]]:
    """(the request without the hosted tools Anthropic has, their Anthropic specs). The request is
    copied only when it has such a tool, so the function-tool path reads just the rest."""
    specs: list[dict[str, Any]] = []
    keep = []
    for tool in request.tools:
        kind = tool.WhichOneof("kind")
        if kind in _WEB_KINDS:
            specs.append(_web_search_spec(codec.to_json(getattr(tool, kind))))
        elif kind in _COMPUTER_KINDS:
            specs.append(_computer_spec(codec.to_json(getattr(tool, kind))))
        else:
            keep.append(tool)
    if not specs:
        return request, []
    rest = request_pb2.CreateResponseRequest()
    rest.CopyFrom(request)
    del rest.tools[:]
    rest.tools.extend(keep)
    return rest, specs


def beta_headers(body: dict[str, Any], configured: str | None = None) -> dict[str, str]:
    """The `anthropic-beta` header a Messages body needs for the hosted tools it carries, added to the
    betas the deployment configures (a comma-separated list)."""
    if not offers_computer(body):
        return {}
    betas = [b.strip() for b in (configured or "").split(",") if b.strip()]
    return {"anthropic-beta": ",".join([*betas, COMPUTER_BETA] if COMPUTER_BETA not in betas else betas)}


def offers_computer(body: dict[str, Any]) -> bool:
    return any(t.get("type") == COMPUTER for t in body.get("tools") or [])


# ------------------------------------------------------------------------------------------ actions
def _xy(a: dict[str, Any]) -> list[int]:
    return [int(a.get("x") or 0), int(a.get("y") or 0)]


def anthropic_action(action: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI computer action → the computer tool's input."""
    kind = action.get("type")
    if kind == "click":
        name = {"right": "right_click", "wheel": "middle_click"}.get(str(action.get("button")), "left_click")
        return {"action": name, "coordinate": _xy(action)}
    if kind == "double_click":
        return {"action": "double_click", "coordinate": _xy(action)}
    if kind == "move":
        return {"action": "mouse_move", "coordinate": _xy(action)}
    if kind == "drag":
        path = action.get("path") or [{}]
        return {"action": "left_click_drag", "start_coordinate": _xy(path[0]), "coordinate": _xy(path[-1])}
    if kind == "keypress":
        return {"action": "key", "text": "+".join(action.get("keys") or [])}
    if kind == "type":
        return {"action": "type", "text": action.get("text", "")}
    if kind == "scroll":
        dx, dy = int(action.get("scroll_x") or 0), int(action.get("scroll_y") or 0)
        direction = ("down" if dy > 0 else "up") if dy else ("right" if dx > 0 else "left")
        amount = max(1, round(abs(dy or dx) / SCROLL_PX))
        return {
            "action": "scroll",
            "coordinate": _xy(action),
            "scroll_direction": direction,
            "scroll_amount": amount,
        }
    if kind == "wait":
        return {"action": "wait", "duration": 1}
    return {"action": "screenshot"}


_CLICKS = {"left_click": "left", "right_click": "right", "middle_click": "wheel"}


def openai_action(data: dict[str, Any], provider: str) -> dict[str, Any]:
    """The computer tool's input → an OpenAI computer action (a 502 for one OpenAI has no word for)."""
    name = data.get("action")
    coord = data.get("coordinate") or [0, 0]
    x, y = (int(coord[0]), int(coord[1])) if len(coord) == 2 else (0, 0)
    if name in _CLICKS:
        return {"type": "click", "button": _CLICKS[name], "x": x, "y": y}
    if name == "double_click":
        return {"type": "double_click", "x": x, "y": y}
    if name == "mouse_move":
        return {"type": "move", "x": x, "y": y}
    if name == "left_click_drag":
        sx, sy = data.get("start_coordinate") or [0, 0]
        return {"type": "drag", "path": [{"x": int(sx), "y": int(sy)}, {"x": x, "y": y}]}
    if name == "key":
        return {"type": "keypress", "keys": str(data.get("text", "")).split("+")}
    if name == "type":
        return {"type": "type", "text": str(data.get("text", ""))}
    if name == "scroll":
        px = int(data.get("scroll_amount") or 1) * SCROLL_PX
        direction = data.get("scroll_direction")
        dx = px if direction == "right" else -px if direction == "left" else 0
        dy = px if direction == "down" else -px if direction == "up" else 0
        return {"type": "scroll", "x": x, "y": y, "scroll_x": dx, "scroll_y": dy}
    if name == "wait":
        return {"type": "wait"}
    if name == "screenshot":
        return {"type": "screenshot"}
    raise GatewayError(
        Reason.UPSTREAM_ERROR,
        f"{provider} asked for the computer action `{name}`, which OpenAI's computer tool lacks.",
    )


# ------------------------------------------------------------------------------------------ input items
def input_blocks(item: items_pb2.Item, image_source: Any) -> tuple[str, list[dict[str, Any]]]:
    """(role, blocks) of a hosted-tool item in the conversation. A `web_search_call` carries none:
    Anthropic wants its own encrypted results back, which OpenAI's item does not have, and the answer
    that followed the search is in the next message anyway."""
    data = codec.to_json(item)
    kind = data.get("type")
    if kind == "computer_call":
        action = anthropic_action(data.get("action") or {})
        return "assistant", [
            {"type": "tool_use", "id": data.get("call_id", ""), "name": "computer", "input": action}
        ]
    if kind == "computer_call_output":
        shot = data.get("output") or {}
        content = (
            [{"type": "image", "source": image_source(shot["image_url"])}] if shot.get("image_url") else []
        )
        return "user", [{"type": "tool_result", "tool_use_id": data.get("call_id", ""), "content": content}]
    return "user", []


# ------------------------------------------------------------------------------------------ stream
def _event(body: dict[str, Any]) -> Event:
    return codec.from_json(Event(), {"sequence_number": 0, **body})


def _item(body: dict[str, Any]) -> items_pb2.Item:
    return codec.from_json(items_pb2.Item(), body)


class HostedBlocks:
    """The hosted-tool content blocks of one Anthropic stream, kept beside `AnthropicStream`."""

    def __init__(self, builder: StreamBuilder, provider: str, *, computer: bool) -> None:
        self.b, self.provider, self.computer = builder, provider, computer
        self._searches: dict[str, str] = {}  # server_tool_use id → web_search_call item id
        self._by_index: dict[int, tuple[str, str, list[str]]] = {}  # block → (kind, item/tool id, json)
        self._citations: dict[int, list[dict[str, Any]]] = {}  # text block → its citations

    def claims(self, block: dict[str, Any]) -> bool:
        btype = block.get("type")
        if btype in ("server_tool_use", "web_search_tool_result"):
            return True
        return self.computer and btype == "tool_use" and block.get("name") == "computer"

    def start(self, index: int, block: dict[str, Any]) -> list[Event]:
        btype = block.get("type")
        if btype == "server_tool_use":
            item_id = new_id("ws")
            self._searches[str(block.get("id", ""))] = item_id
            self._by_index[index] = ("search", item_id, [])
            n, added = self.b.open_item(
                item_id,
                _item(
                    {
                        "type": "web_search_call",
                        "id": item_id,
                        "status": "in_progress",
                        "action": {"type": "search"},
                    }
                ),
            )
            return [
                added,
                _event(
                    {"type": "response.web_search_call.in_progress", "item_id": item_id, "output_index": n}
                ),
            ]
        if btype == "web_search_tool_result":
            return self._search_result(block)
        self._by_index[index] = ("computer", str(block.get("id", "")), [])
        return []

    def delta(self, index: int, delta: dict[str, Any]) -> bool:
        """Takes an `input_json_delta` of a hosted block; False when the block is not one."""
        entry = self._by_index.get(index)
        if entry is None:
            return False
        if delta.get("type") == "input_json_delta":
            entry[2].append(str(delta.get("partial_json", "")))
        return True

    def stop(self, index: int) -> list[Event] | None:
        """Events at a hosted block's end; None when the block is not one."""
        entry = self._by_index.pop(index, None)
        if entry is None:
            return None
        kind, key, parts = entry
        data = _loads("".join(parts))
        if kind == "search":
            item = self.b.item_of(key).web_search_call
            if data.get("query"):
                item.action.search.query = str(data["query"])
            return [
                _event(
                    {
                        "type": "response.web_search_call.searching",
                        "item_id": key,
                        "output_index": self.b.index_of(key),
                    }
                )
            ]
        action = openai_action(data, self.provider)
        item_id = new_id("cu")
        call = {
            "type": "computer_call",
            "id": item_id,
            "call_id": key,
            "action": action,
            "pending_safety_checks": [],
            "status": "completed",
        }
        _, added = self.b.open_item(item_id, _item(call))
        return [added, *self.b.close(item_id)]

    def _search_result(self, block: dict[str, Any]) -> list[Event]:
        item_id = self._searches.pop(str(block.get("tool_use_id", "")), None)
        if item_id is None or not self.b.is_open(item_id):
            return []
        content = block.get("content")
        call = self.b.item_of(item_id).web_search_call
        n = self.b.index_of(item_id)
        if isinstance(content, list):
            for result in content:
                if isinstance(result, dict) and result.get("url"):
                    source = call.action.search.sources.add()
                    source.CopyFrom(codec.from_json(type(source)(), {"type": "url", "url": result["url"]}))
            call.status = items_pb2.WEB_SEARCH_CALL_STATUS_COMPLETED
            out = [
                _event({"type": "response.web_search_call.completed", "item_id": item_id, "output_index": n})
            ]
        else:  # `web_search_tool_result_error`
            call.status = items_pb2.WEB_SEARCH_CALL_STATUS_FAILED
            out = []
        return [*out, *self.b.close(item_id)]

    def citation(self, index: int, citation: dict[str, Any]) -> None:
        """A `citations_delta` on a text block: kept until the block's text is whole."""
        if citation.get("type") == "web_search_result_location" and citation.get("url"):
            self._citations.setdefault(index, []).append(citation)

    def annotate(self, index: int, item_id: str) -> list[Event]:
        """At a cited text block's end: each citation as a `url_citation` over the block's text."""
        cites = self._citations.pop(index, [])
        if not cites or not self.b.is_open(item_id):
            return []
        end = len(self.b.text_of(item_id))
        out = []
        for c in cites:
            a = content_pb2.Annotation()
            u = a.url_citation
            u.url, u.title, u.start_index, u.end_index = str(c["url"]), str(c.get("title") or ""), 0, end
            out.append(self.b.add_annotation(item_id, a))
        return out


def _loads(raw: str) -> dict[str, Any]:
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
