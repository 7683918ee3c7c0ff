"""Claude on Vertex AI: the Messages API with Vertex's URL, auth and two body changes (pure).

`POST {base}/models/{model}:streamRawPredict` (base: `.../publishers/anthropic`, config/provider_urls.py)
takes the Messages body without `model` (the URL names it) and with `anthropic_version:
"vertex-2023-10-16"` in the body instead of the `anthropic-version` header; the stream is Anthropic's own
SSE. Token counts are `POST {base}/models/count-tokens:rawPredict`, whose body does name the model.
Auth is a Google Bearer token (providers/google_auth.py), never `x-api-key`.
"""

from __future__ import annotations

from typing import Any

from responses_gateway.providers.http import path_segment

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
COUNT_TOKENS_PATH = "/models/count-tokens:rawPredict"


def stream_path(model: str) -> str:
    return f"/models/{path_segment(model)}:streamRawPredict"


def messages_body(body: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in body.items() if k != "model"}
    out["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
    return out


def count_tokens_body(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "anthropic_version": VERTEX_ANTHROPIC_VERSION}
