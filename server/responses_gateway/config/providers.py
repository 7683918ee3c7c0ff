"""Provider prefixes as LiteLLM spells them, and what each one means for the gateway.

Pure data plus the parsing of a LiteLLM model string. Defaults and environment variable names follow
LiteLLM's own (``litellm/llms/*``), so a key exported for LiteLLM works here unchanged.

URL convention, so every adapter builds its URL the same way from ``api_base``:

* ``responses``        -> ``{api_base}/responses``          (OpenAI, Azure: ``{api_base}`` ends in ``/v1``)
* ``chat_completions`` -> ``{api_base}/chat/completions``
* ``anthropic``        -> ``{api_base}/v1/messages``
* ``gemini``           -> ``{api_base}/models/{model}:generateContent`` (Gemini and Vertex AI alike)

``base_suffix`` bridges LiteLLM's bases to that convention: LiteLLM's Ollama base is the server root
(``http://localhost:11434``) while its OpenAI-compatible API lives under ``/v1``; Gemini's
``GEMINI_API_BASE`` has no version. The suffix is appended only when the configured base has no path, so
an explicit ``http://host:11434/v1`` or ``.../v1`` Gemini base is used as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class ProviderKind(StrEnum):
    OPENAI = "openai"
    AZURE = "azure"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    VERTEX_AI = "vertex_ai"
    HOSTED_VLLM = "hosted_vllm"
    OLLAMA_CHAT = "ollama_chat"
    GROQ = "groq"
    MISTRAL = "mistral"
    TOGETHER_AI = "together_ai"
    DEEPSEEK = "deepseek"
    XAI = "xai"
    OPENROUTER = "openrouter"
    FIREWORKS_AI = "fireworks_ai"
    PERPLEXITY = "perplexity"
    BEDROCK = "bedrock"
    AZURE_AI = "azure_ai"
    HUGGINGFACE = "huggingface"


class AdapterKind(StrEnum):
    """Which upstream wire protocol the gateway speaks to the deployment."""

    RESPONSES = "responses"  # native OpenAI Responses API, passed through
    CHAT_COMPLETIONS = "chat_completions"  # Responses <-> Chat Completions bridge
    ANTHROPIC = "anthropic"  # Anthropic Messages API
    GEMINI = "gemini"  # Gemini generateContent (AI Studio and Vertex AI)
    BEDROCK = "bedrock"  # Amazon Bedrock Converse / ConverseStream


class AuthStyle(StrEnum):
    BEARER = "bearer"  # Authorization: Bearer <key>
    AZURE_API_KEY = "api-key"  # api-key: <key>
    X_API_KEY = "x-api-key"  # x-api-key: <key> (+ anthropic-version)
    GOOG_API_KEY = "x-goog-api-key"  # x-goog-api-key: <key>
    GOOGLE_OAUTH = "google-oauth"  # OAuth token from service-account / application-default credentials
    AWS_SIGV4 = "aws-sigv4"  # SigV4 with the AWS credential chain (or a Bedrock API key as a Bearer token)


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    kind: ProviderKind
    adapter: AdapterKind
    auth: AuthStyle
    default_api_base: str | None
    api_base_env: tuple[str, ...] = ()
    # First set variable wins; the first name is the one we tell users to set.
    api_key_env: tuple[str, ...] = ()
    key_required: bool = True
    base_suffix: str = ""
    api_version_env: tuple[str, ...] = ()


def _spec(
    kind: ProviderKind,
    adapter: AdapterKind,
    base: str | None,
    base_env: tuple[str, ...],
    key_env: tuple[str, ...],
    *,
    auth: AuthStyle = AuthStyle.BEARER,
    key_required: bool = True,
    suffix: str = "",
    version_env: tuple[str, ...] = (),
) -> ProviderSpec:
    return ProviderSpec(kind, adapter, auth, base, base_env, key_env, key_required, suffix, version_env)


_R, _C = AdapterKind.RESPONSES, AdapterKind.CHAT_COMPLETIONS
P = ProviderKind

PROVIDERS: Mapping[ProviderKind, ProviderSpec] = MappingProxyType(
    {
        s.kind: s
        for s in (
            _spec(
                P.OPENAI,
                _R,
                "https://api.openai.com/v1",
                ("OPENAI_BASE_URL", "OPENAI_API_BASE"),
                ("OPENAI_API_KEY",),
            ),
            # No default base: every Azure resource has its own (https://<resource>.openai.azure.com).
            _spec(
                P.AZURE,
                _R,
                None,
                ("AZURE_API_BASE",),
                ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"),
                auth=AuthStyle.AZURE_API_KEY,
                version_env=("AZURE_API_VERSION",),
            ),
            _spec(
                P.ANTHROPIC,
                AdapterKind.ANTHROPIC,
                "https://api.anthropic.com",
                ("ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"),
                ("ANTHROPIC_API_KEY",),
                auth=AuthStyle.X_API_KEY,
            ),
            _spec(
                P.GEMINI,
                AdapterKind.GEMINI,
                "https://generativelanguage.googleapis.com",
                ("GEMINI_API_BASE",),
                ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
                auth=AuthStyle.GOOG_API_KEY,
                suffix="/v1beta",
            ),
            # Base derived from project + location at resolve time; credentials, not a key.
            _spec(
                P.VERTEX_AI, AdapterKind.GEMINI, None, (), (), auth=AuthStyle.GOOGLE_OAUTH, key_required=False
            ),
            # vLLM needs no key unless started with --api-key; no default base (it is wherever you run it).
            _spec(
                P.HOSTED_VLLM,
                _C,
                None,
                ("HOSTED_VLLM_API_BASE",),
                ("HOSTED_VLLM_API_KEY",),
                key_required=False,
            ),
            _spec(
                P.OLLAMA_CHAT,
                _C,
                "http://localhost:11434",
                ("OLLAMA_API_BASE",),
                ("OLLAMA_API_KEY",),
                key_required=False,
                suffix="/v1",
            ),
            _spec(P.GROQ, _C, "https://api.groq.com/openai/v1", ("GROQ_API_BASE",), ("GROQ_API_KEY",)),
            _spec(P.MISTRAL, _C, "https://api.mistral.ai/v1", ("MISTRAL_API_BASE",), ("MISTRAL_API_KEY",)),
            _spec(
                P.TOGETHER_AI,
                _C,
                "https://api.together.xyz/v1",
                ("TOGETHER_AI_API_BASE",),
                ("TOGETHER_API_KEY", "TOGETHER_AI_API_KEY", "TOGETHERAI_API_KEY", "TOGETHER_AI_TOKEN"),
            ),
            # LiteLLM defaults to DeepSeek's /beta base (prefix completion etc.); plain chat works
            # on the root.
            _spec(P.DEEPSEEK, _C, "https://api.deepseek.com", ("DEEPSEEK_API_BASE",), ("DEEPSEEK_API_KEY",)),
            _spec(P.XAI, _C, "https://api.x.ai/v1", ("XAI_API_BASE",), ("XAI_API_KEY",)),
            _spec(
                P.OPENROUTER,
                _C,
                "https://openrouter.ai/api/v1",
                ("OPENROUTER_API_BASE",),
                ("OPENROUTER_API_KEY", "OR_API_KEY"),
            ),
            _spec(
                P.FIREWORKS_AI,
                _C,
                "https://api.fireworks.ai/inference/v1",
                ("FIREWORKS_API_BASE",),
                ("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY", "FIREWORKSAI_API_KEY", "FIREWORKS_AI_TOKEN"),
            ),
            _spec(
                P.PERPLEXITY,
                _C,
                "https://api.perplexity.ai",
                ("PERPLEXITY_API_BASE",),
                ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
            ),
            # Base from the region at resolve time (config/bedrock.py); AWS credentials, or a Bedrock
            # API key (a Bearer token) when one is set.
            _spec(
                P.BEDROCK,
                AdapterKind.BEDROCK,
                None,
                ("AWS_BEDROCK_RUNTIME_ENDPOINT",),
                ("AWS_BEARER_TOKEN_BEDROCK",),
                auth=AuthStyle.AWS_SIGV4,
                key_required=False,
            ),
            # Azure AI Foundry: OpenAI-compatible chat (`azure_ai/responses/...`: the Responses API) on
            # the resource's own base; `api-key` or an Entra ID token (azure_ad_token / AZURE_AD_TOKEN).
            _spec(
                P.AZURE_AI,
                _C,
                None,
                ("AZURE_AI_API_BASE",),
                ("AZURE_AI_API_KEY",),
                auth=AuthStyle.AZURE_API_KEY,
            ),
            # TGI / Inference Endpoints via api_base, else the Hugging Face router (config/provider_urls.py).
            _spec(
                P.HUGGINGFACE,
                _C,
                None,
                ("HF_API_BASE", "HUGGINGFACE_API_BASE"),
                ("HUGGINGFACE_API_KEY", "HF_TOKEN"),
            ),
        )
    }
)

# LiteLLM prefixes served by another entry: ``ollama/`` is LiteLLM's /api/generate flavour; the gateway
# always uses Ollama's chat API.
PREFIX_ALIASES: Mapping[str, ProviderKind] = MappingProxyType({"ollama": ProviderKind.OLLAMA_CHAT})

VERTEX_PROJECT_ENV = ("VERTEXAI_PROJECT", "VERTEX_PROJECT", "GOOGLE_CLOUD_PROJECT")
VERTEX_LOCATION_ENV = ("VERTEXAI_LOCATION", "VERTEX_LOCATION")
VERTEX_CREDENTIALS_ENV = ("VERTEXAI_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS")
VERTEX_DEFAULT_LOCATION = "us-central1"

# LiteLLM guesses the provider of a bare model name from its model lists; this is the part of that guess
# that matters here. Order matters: first match wins.
_BARE_NAME_PROVIDERS: tuple[tuple[str, ProviderKind], ...] = (
    ("gpt-", P.OPENAI),
    ("chatgpt-", P.OPENAI),
    ("o1", P.OPENAI),
    ("o3", P.OPENAI),
    ("o4", P.OPENAI),
    ("codex-", P.OPENAI),
    ("computer-use-", P.OPENAI),
    ("ft:gpt-", P.OPENAI),
    ("claude-", P.ANTHROPIC),
    ("gemini-", P.VERTEX_AI),  # LiteLLM sends bare gemini-* to Vertex AI; write gemini/... for AI Studio
)


def provider_for_prefix(prefix: str) -> ProviderKind | None:
    if prefix in PREFIX_ALIASES:
        return PREFIX_ALIASES[prefix]
    try:
        return ProviderKind(prefix)
    except ValueError:
        return None


def infer_provider(bare_model: str) -> ProviderKind | None:
    """Provider of a model name written without a prefix, as LiteLLM would guess it (``*`` -> openai)."""
    if bare_model == "*":
        return P.OPENAI
    for start, kind in _BARE_NAME_PROVIDERS:
        if bare_model.startswith(start):
            return kind
    return None


@dataclass(frozen=True, slots=True)
class ParsedModel:
    """A LiteLLM model string taken apart. ``provider`` is None when it names no provider we serve."""

    provider: ProviderKind | None
    prefix: str  # as written (``ollama``, ``bedrock``...), "" when the name had none
    upstream_model: str  # what is sent upstream as ``model``
    force_adapter: AdapterKind | None  # from openai/chat_completions/... or openai/responses/...


def parse_model(model: str, custom_llm_provider: str | None = None) -> ParsedModel:
    """``openai/gpt-4o`` -> (openai, ``gpt-4o``). ``custom_llm_provider`` (a LiteLLM param) supplies the
    prefix when the model string lacks it. Only the first ``/`` splits: ``openrouter/meta-llama/x`` sends
    ``meta-llama/x`` upstream."""
    if custom_llm_provider and model.split("/", 1)[0] != custom_llm_provider:
        model = f"{custom_llm_provider}/{model}"
    prefix, sep, rest = model.partition("/")
    if not sep:
        return ParsedModel(infer_provider(model), "", model, None)
    provider = provider_for_prefix(prefix)
    if provider is None:
        return ParsedModel(None, prefix, rest, None)
    force: AdapterKind | None = None
    if provider in (P.OPENAI, P.AZURE, P.AZURE_AI):
        route, sep2, inner = rest.partition("/")
        if sep2 and route == "chat_completions":
            force, rest = _C, inner
        elif sep2 and route == "responses":
            force, rest = _R, inner
    if provider is P.BEDROCK:  # LiteLLM's `bedrock/converse/<model-id>`: Converse is all we speak
        rest = rest.removeprefix("converse/")
    return ParsedModel(provider, prefix, rest, force)
