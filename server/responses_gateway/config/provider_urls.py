"""Where the deployments of providers with URL rules of their own go (pure; used by resolve.py).

Vertex AI: every model lives under
``https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/publishers/{publisher}``
(the ``global`` location on ``aiplatform.googleapis.com``), where the publisher is ``google`` for Gemini
and ``anthropic`` for Claude (the Anthropic adapter then posts ``/models/{model}:streamRawPredict``).
An ``api_base`` that is only a host (a Private Service Connect endpoint, a proxy) gets that path; one
with a path is used as written, as before.

Hugging Face, after LiteLLM's rules: an ``api_base`` (TGI, an Inference Endpoint) or a model written as a
URL (``huggingface/https://xyz.endpoints.huggingface.cloud``) is an OpenAI-compatible server whose chat
API is ``{base}/v1/chat/completions``. Otherwise the model goes through the Hugging Face router
(``https://router.huggingface.co/v1``); ``huggingface/<provider>/<org>/<model>`` picks the inference
provider, which the router's OpenAI-compatible API takes as a ``:provider`` suffix of the model id
(LiteLLM asks the Hub for the provider's own model id instead; the suffix needs no extra call).
"""

from __future__ import annotations

from urllib.parse import urlsplit

VERTEX_PUBLISHERS = {"claude-": "anthropic"}
HF_ROUTER_BASE = "https://router.huggingface.co/v1"
# What a TGI / Inference Endpoint server answers to any model name; LiteLLM sends the URL itself.
HF_ENDPOINT_MODEL = "tgi"


def vertex_publisher(model: str) -> str:
    for start, publisher in VERTEX_PUBLISHERS.items():
        if model.startswith(start):
            return publisher
    return "google"


def vertex_model_path(project: str, location: str, publisher: str) -> str:
    return f"/v1/projects/{project}/locations/{location}/publishers/{publisher}"


def vertex_host(location: str) -> str:
    return "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"


def has_path(base: str) -> bool:
    return urlsplit(base).path not in ("", "/")


def vertex_api_base(api_base: str | None, project: str | None, location: str, publisher: str) -> str | None:
    """The base whose ``/models/{model}:...`` is the model's endpoint; None when a project is needed
    and missing."""
    if api_base and has_path(api_base):
        return api_base.rstrip("/")
    if project is None:
        return None
    root = api_base.rstrip("/") if api_base else f"https://{vertex_host(location)}"
    return root + vertex_model_path(project, location, publisher)


def huggingface_target(api_base: str | None, model: str) -> tuple[str, str, bool]:
    """(base whose ``/chat/completions`` is the chat API, model id to send, whether it is HF's router)."""
    if model.startswith(("http://", "https://")):
        return _chat_base(model), HF_ENDPOINT_MODEL, False
    if api_base:
        return _chat_base(api_base), model, False
    provider, sep, rest = model.partition("/")
    if sep and "/" in rest:
        return HF_ROUTER_BASE, f"{rest}:{provider}", True
    return HF_ROUTER_BASE, model, True


def _chat_base(url: str) -> str:
    base = url.rstrip("/").removesuffix("/chat/completions")
    return base if base.endswith("/v1") else f"{base}/v1"
