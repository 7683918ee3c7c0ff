"""Turn a ``Deployment`` from the config into everything an adapter needs to call upstream.

Precedence for each value, as in LiteLLM: the deployment's ``litellm_params`` > the provider's environment
variables > the provider's default. A deployment that cannot work (no key, no base, unknown provider, a
referenced variable unset) is still returned, with ``enabled=False`` and a reason a human can act on
("set OPENAI_API_KEY"), so the gateway starts and can list what is missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from .bedrock import BedrockSettings, bedrock_settings, runtime_base
from .models import Deployment
from .provider_urls import has_path, huggingface_target, vertex_api_base, vertex_publisher
from .providers import (
    PROVIDERS,
    VERTEX_CREDENTIALS_ENV,
    VERTEX_DEFAULT_LOCATION,
    VERTEX_LOCATION_ENV,
    VERTEX_PROJECT_ENV,
    AdapterKind,
    AuthStyle,
    ProviderKind,
    ProviderSpec,
    parse_model,
)
from .secrets import lookup_env


@dataclass(frozen=True, slots=True)
class DeploymentDefaults:
    """Values a deployment inherits when its ``litellm_params`` do not set them (from the settings)."""

    timeout: float = 600.0
    stream_timeout: float = 600.0
    max_retries: int = 0
    drop_params: bool = False
    max_response_bytes: int = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """A deployment's own prices (USD per token) from its litellm_params; None: the price table's."""

    input: float | None = None
    output: float | None = None
    cache_read: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None

    @property
    def is_set(self) -> bool:
        return (self.input, self.output, self.cache_read, self.cache_write, self.reasoning) != (None,) * 5


_NO_PRICES = PriceOverride()


@dataclass(frozen=True, slots=True)
class ResolvedDeployment:
    model_name: str  # public name clients ask for (may be a wildcard pattern, see ``is_wildcard``)
    deployment_id: str  # model_info.id, else "<model_name>#<index>"
    index: int  # position in model_list
    litellm_model: str  # litellm_params.model as configured (after wildcard substitution)
    provider: ProviderKind | None  # None only when disabled for an unsupported provider
    adapter: AdapterKind
    auth: AuthStyle
    upstream_model: str
    api_base: str | None  # never None when enabled
    api_key: str | None = field(repr=False)
    key_required: bool
    headers: Mapping[str, str]
    api_version: str | None
    organization: str | None
    timeout: float
    stream_timeout: float
    max_retries: int
    drop_params: bool
    # Largest upstream answer (body bytes, or all of a stream's) the gateway relays and stores.
    max_response_bytes: int
    mock_response: str | None
    vertex_project: str | None
    vertex_location: str | None
    vertex_credentials: str | None = field(repr=False)
    enabled: bool
    disabled_reason: str | None
    # Variables that would supply the key, first one preferred: for "set X to enable Y" messages.
    key_env_vars: tuple[str, ...] = ()
    # Who runs `mcp` tools on an OpenAI-native deployment (litellm_params.mcp_execution).
    mcp_execution: str = "upstream"
    # Routing: share under simple-shuffle, requests / tokens per minute (None: no limit), retries of a
    # failure here (None: router_settings.num_retries).
    weight: float = 1.0
    rpm: int | None = None
    tpm: int | None = None
    num_retries: int | None = None
    prices: PriceOverride = _NO_PRICES
    bedrock: BedrockSettings | None = None  # a Bedrock deployment's region and credential source
    # Azure AI Foundry: an Entra ID token (litellm_params.azure_ad_token / AZURE_AD_TOKEN), used
    # instead of the key.
    azure_ad_token: str | None = field(default=None, repr=False)

    @property
    def is_wildcard(self) -> bool:
        return "*" in self.model_name


def _first_env(env: Mapping[str, str], names: Sequence[str]) -> str | None:
    for name in names:
        value = lookup_env(env, name)
        if value is not None:
            return value
    return None


def _set_hint(names: Sequence[str], alternative: str | None = None) -> str:
    """``set GEMINI_API_KEY (or GOOGLE_API_KEY)``."""
    alternatives = [*names[1:2], *([alternative] if alternative else [])]
    hint = f"set {names[0]}" if names else f"set {alternative}"
    if names and alternatives:
        hint += f" (or {' / '.join(alternatives)})"
    return hint


def _with_suffix(base: str, suffix: str) -> str:
    base = base.rstrip("/")
    if suffix and urlsplit(base).path in ("", "/"):
        return base + suffix
    return base


def resolve_deployment(
    deployment: Deployment,
    *,
    index: int = 0,
    env: Mapping[str, str] | None = None,
    defaults: DeploymentDefaults | None = None,
    missing_env: Mapping[str, Sequence[str]] | None = None,
    model_override: str | None = None,
) -> ResolvedDeployment:
    """Resolve one deployment. ``missing_env`` maps a ``litellm_params`` key to the ``os.environ/`` variables
    it referenced that were unset (from ``secrets.resolve_env_refs``); ``model_override`` replaces
    ``litellm_params.model`` (wildcard routing)."""
    env = os.environ if env is None else env
    defaults = defaults or DeploymentDefaults()
    missing = dict(missing_env or {})
    p = deployment.litellm_params
    litellm_model = model_override or p.model
    parsed = parse_model(litellm_model, p.custom_llm_provider)
    problems: list[str] = []

    spec: ProviderSpec | None = PROVIDERS.get(parsed.provider) if parsed.provider else None
    if spec is None:
        return _unsupported(deployment, index, litellm_model, parsed.prefix, parsed.upstream_model, defaults)

    adapter = parsed.force_adapter or spec.adapter
    if p.use_chat_completions_api and spec.kind in (ProviderKind.OPENAI, ProviderKind.AZURE):
        adapter = AdapterKind.CHAT_COMPLETIONS
    # mock_response never reaches upstream, so it needs neither key nor base (handy for tests and demos).
    mocked = p.mock_response is not None

    # Any os.environ/ reference the user wrote that is unset disables the deployment, except an optional
    # key: vLLM/Ollama run fine without one.
    for key, names in missing.items():
        if (key == "api_key" and not spec.key_required) or (mocked and key in ("api_key", "api_base")):
            continue
        problems.extend(f"set {n}" for n in names if f"set {n}" not in problems)

    api_key = p.api_key or None
    if api_key is None and "api_key" not in missing:
        api_key = _first_env(env, spec.api_key_env)
    key_required = spec.key_required and not mocked
    upstream_model = parsed.upstream_model
    azure_ad_token = None
    if spec.kind is ProviderKind.AZURE_AI:
        # An Entra ID token stands in for the key.
        azure_ad_token = p.azure_ad_token or _first_env(env, ("AZURE_AD_TOKEN",))
        key_required = key_required and azure_ad_token is None
    hf_base = None
    if spec.kind is ProviderKind.HUGGINGFACE:
        own_base = p.api_base or _first_env(env, spec.api_base_env)
        hf_base, upstream_model, via_router = huggingface_target(own_base, upstream_model)
        key_required = key_required and via_router  # a TGI server of your own may take no key
    if key_required and api_key is None and "api_key" not in missing:
        problems.append(_set_hint(spec.api_key_env))

    vertex_project = vertex_location = vertex_credentials = None
    api_base = p.api_base or None
    if api_base is None and "api_base" not in missing:
        api_base = _first_env(env, spec.api_base_env) or spec.default_api_base
    if hf_base is not None and "api_base" not in missing:
        api_base = hf_base
    if spec.kind is ProviderKind.VERTEX_AI:
        vertex_project = p.vertex_project or _first_env(env, VERTEX_PROJECT_ENV)
        vertex_location = p.vertex_location or _first_env(env, VERTEX_LOCATION_ENV) or VERTEX_DEFAULT_LOCATION
        vertex_credentials = p.vertex_credentials or _first_env(env, VERTEX_CREDENTIALS_ENV)
        publisher = vertex_publisher(upstream_model)
        if publisher == "anthropic":  # Claude on Vertex: the Messages API under Vertex's URL and auth
            adapter = AdapterKind.ANTHROPIC
        needs_project = not (api_base and has_path(api_base))
        if vertex_project is None and needs_project and not mocked and "vertex_project" not in missing:
            problems.append(_set_hint(VERTEX_PROJECT_ENV[:1], "litellm_params.vertex_project"))
        api_base = vertex_api_base(api_base, vertex_project, vertex_location, publisher)
    bedrock = None
    if spec.kind is ProviderKind.BEDROCK:
        bedrock = bedrock_settings(p, env, parsed.upstream_model)
        api_base = p.api_base or p.aws_bedrock_runtime_endpoint or api_base or runtime_base(bedrock.region)
    if api_base is not None:
        api_base = _with_suffix(api_base, spec.base_suffix)
    elif not mocked and "api_base" not in missing and spec.kind is not ProviderKind.VERTEX_AI:
        problems.append(_set_hint(spec.api_base_env, "litellm_params.api_base"))

    headers = {**(p.headers or {}), **(p.extra_headers or {})}
    return ResolvedDeployment(
        model_name=deployment.model_name,
        deployment_id=_deployment_id(deployment, index),
        index=index,
        litellm_model=litellm_model,
        provider=spec.kind,
        adapter=adapter,
        auth=spec.auth,
        upstream_model=upstream_model,
        api_base=api_base,
        api_key=api_key,
        key_required=key_required,
        headers=MappingProxyType(headers),
        api_version=p.api_version or _first_env(env, spec.api_version_env),
        organization=p.organization,
        timeout=p.timeout or defaults.timeout,
        stream_timeout=p.stream_timeout or p.timeout or defaults.stream_timeout,
        max_retries=p.max_retries if p.max_retries is not None else defaults.max_retries,
        drop_params=p.drop_params if p.drop_params is not None else defaults.drop_params,
        max_response_bytes=p.max_response_bytes or defaults.max_response_bytes,
        mock_response=p.mock_response,
        vertex_project=vertex_project,
        vertex_location=vertex_location,
        vertex_credentials=vertex_credentials,
        enabled=not problems,
        disabled_reason="; ".join(problems) or None,
        key_env_vars=spec.api_key_env,
        mcp_execution=p.mcp_execution or "upstream",
        # LiteLLM's simple-shuffle weighs by rpm (else tpm) when no weight is given.
        weight=float(p.weight or p.rpm or p.tpm or 1),
        rpm=p.rpm,
        tpm=p.tpm,
        num_retries=p.num_retries,
        prices=PriceOverride(
            p.input_cost_per_token,
            p.output_cost_per_token,
            p.cache_read_input_token_cost,
            p.cache_creation_input_token_cost,
            p.output_cost_per_reasoning_token,
        ),
        bedrock=bedrock,
        azure_ad_token=azure_ad_token,
    )


def _deployment_id(deployment: Deployment, index: int) -> str:
    return deployment.model_info.id or f"{deployment.model_name}#{index}"


def _unsupported(
    deployment: Deployment,
    index: int,
    litellm_model: str,
    prefix: str,
    upstream: str,
    defaults: DeploymentDefaults,
) -> ResolvedDeployment:
    # Kept in the list (disabled) rather than rejected, so a LiteLLM file with e.g. bedrock/ still loads.
    if prefix:
        reason = f"provider {prefix!r} is not supported by this gateway"
    else:
        reason = (
            f"cannot tell the provider of {litellm_model!r}; write it as provider/model (e.g. openai/...)"
        )
    return ResolvedDeployment(
        model_name=deployment.model_name,
        deployment_id=_deployment_id(deployment, index),
        index=index,
        litellm_model=litellm_model,
        provider=None,
        adapter=AdapterKind.CHAT_COMPLETIONS,
        auth=AuthStyle.BEARER,
        upstream_model=upstream,
        api_base=None,
        api_key=None,
        key_required=False,
        headers=MappingProxyType({}),
        api_version=None,
        organization=None,
        timeout=defaults.timeout,
        stream_timeout=defaults.stream_timeout,
        max_retries=0,
        drop_params=False,
        max_response_bytes=defaults.max_response_bytes,
        mock_response=None,
        vertex_project=None,
        vertex_location=None,
        vertex_credentials=None,
        enabled=False,
        disabled_reason=reason,
    )
