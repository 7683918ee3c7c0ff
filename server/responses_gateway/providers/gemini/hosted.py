"""OpenAI's web search on Gemini (pure): Google Search grounding.

A `web_search` / `web_search_preview` tool becomes `{"google_search": {}}`. Gemini reports what it
searched in the candidate's `groundingMetadata` (usually on the last chunk): its `webSearchQueries` and
`groundingChunks` become one `web_search_call` item (search action: the queries and the source URLs),
and each `groundingSupports` segment becomes a `url_citation` annotation on the answer's text for every
chunk it cites. The item follows the message: Gemini says it searched only once the text is out.

Any other hosted tool is left to `Unsupported.function_tools` (a 400 naming tool and provider, or
dropped with `drop_params`).
"""

from __future__ import annotations

from typing import Any

from responses_gateway import codec
from responses_gateway.contract.ids import new_id
from responses_gateway.providers.stream_builder import StreamBuilder
from responses_gateway.v1 import content_pb2, events_pb2, items_pb2, request_pb2

Event = events_pb2.ResponseStreamEvent

_WEB_KINDS = frozenset(
    {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}
)
# The hosted tool kinds this module maps (the function-tool map leaves them to it).
KINDS = _WEB_KINDS
GOOGLE_SEARCH: dict[str, Any] = {"google_search": {}}


def take_tools(
    request: request_pb2.CreateResponseRequest,
) -> tuple[request_pb2.CreateResponseRequest, list[dict[str, Any]]]:
    """(the request without its web search tools, the Gemini tools that stand for them)."""
    keep = [t for t in request.tools if t.WhichOneof("kind") not in _WEB_KINDS]
    if len(keep) == len(request.tools):
        return request, []
    rest = request_pb2.CreateResponseRequest()
    rest.CopyFrom(request)
    del rest.tools[:]
    rest.tools.extend(keep)
    return rest, [GOOGLE_SEARCH]


def _event(body: dict[str, Any]) -> Event:
    return codec.from_json(Event(), {"sequence_number": 0, **body})


def _char_index(text: str, byte_index: int) -> int:
    """Gemini's segment indices count UTF-8 bytes; Responses' annotations count characters."""
    return len(text.encode()[:byte_index].decode(errors="ignore"))


class Grounding:
    """The grounding metadata of one Gemini stream, turned into items when the stream ends."""

    def __init__(self, builder: StreamBuilder) -> None:
        self.b = builder
        self.metadata: dict[str, Any] | None = None

    def candidate(self, candidate: dict[str, Any]) -> None:
        if isinstance(candidate.get("groundingMetadata"), dict):
            self.metadata = candidate["groundingMetadata"]

    def end(self, text_item: str | None) -> list[Event]:
        meta = self.metadata
        if not meta:
            return []
        chunks = [c.get("web") or {} for c in meta.get("groundingChunks") or [] if isinstance(c, dict)]
        out: list[Event] = []
        if text_item is not None and self.b.is_open(text_item):
            text = self.b.text_of(text_item)
            for support in meta.get("groundingSupports") or []:
                segment = support.get("segment") or {}
                start = _char_index(text, int(segment.get("startIndex") or 0))
                end = _char_index(text, int(segment.get("endIndex") or 0))
                for i in support.get("groundingChunkIndices") or []:
                    if not (isinstance(i, int) and 0 <= i < len(chunks) and chunks[i].get("uri")):
                        continue
                    a = content_pb2.Annotation()
                    u = a.url_citation
                    u.url, u.title = str(chunks[i]["uri"]), str(chunks[i].get("title") or "")
                    u.start_index, u.end_index = start, end
                    out.append(self.b.add_annotation(text_item, a))
        queries = [str(q) for q in meta.get("webSearchQueries") or []]
        action: dict[str, Any] = {"type": "search", "queries": queries}
        if queries:
            action["query"] = queries[0]
        sources = [{"type": "url", "url": c["uri"]} for c in chunks if c.get("uri")]
        if sources:
            action["sources"] = sources
        item_id = new_id("ws")
        item = codec.from_json(
            items_pb2.Item(),
            {"type": "web_search_call", "id": item_id, "status": "in_progress", "action": action},
        )
        n, added = self.b.open_item(item_id, item)
        out.append(added)
        for phase in ("in_progress", "searching", "completed"):
            out.append(
                _event({"type": f"response.web_search_call.{phase}", "item_id": item_id, "output_index": n})
            )
        self.b.item_of(item_id).web_search_call.status = items_pb2.WEB_SEARCH_CALL_STATUS_COMPLETED
        out.extend(self.b.close(item_id))
        return out
