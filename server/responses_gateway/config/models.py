"""The shape of the gateway's YAML config (pydantic v2).

The model list and the ``*_settings`` sections follow LiteLLM's proxy ``config.yaml`` so a LiteLLM user can
bring theirs. Two strictness levels, on purpose:

* our own sections (the top level, ``gateway_settings``, a ``model_list`` entry) forbid unknown keys, so a
  typo fails loudly;
* LiteLLM's sections (``litellm_settings``, ``general_settings``, ``router_settings``, ``litellm_params``)
  keep unknown keys (``extra="allow"``): a real LiteLLM file has dozens we do not use. The loader reports
  each one as a warning. Keys we do use are type-checked either way.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

RoutingStrategy = Literal[
    "simple-shuffle", "round-robin", "least-busy", "latency-based-routing", "usage-based-routing"
]
SUPPORTED_ROUTING_STRATEGIES: tuple[RoutingStrategy, ...] = (
    "simple-shuffle",
    "round-robin",
    "least-busy",
    "latency-based-routing",
    "usage-based-routing",
)
# LiteLLM's other spellings of the same strategies.
ROUTING_STRATEGY_ALIASES: dict[str, RoutingStrategy] = {"usage-based-routing-v2": "usage-based-routing"}
DEFAULT_SQLITE_PATH = "./responses-gateway.db"
DEFAULT_MAX_REQUEST_BODY_BYTES = 32 * 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _LiteLLMSection(BaseModel):
    # Unknown keys are kept in ``model_extra`` and surfaced as warnings by the loader.
    model_config = ConfigDict(extra="allow")


def _fallback_targets(value: Any) -> Any:
    # LiteLLM accepts ``{"a": "b"}`` as well as ``{"a": ["b"]}``; normalise the former.
    if isinstance(value, list):
        return [
            {k: [v] if isinstance(v, str) else v for k, v in entry.items()}
            if isinstance(entry, dict)
            else entry
            for entry in value
        ]
    return value


# ``[{"model-a": ["model-b", "model-c"]}]``: try model-b then model-c when model-a fails.
Fallbacks = Annotated[list[dict[str, list[str]]], BeforeValidator(_fallback_targets)]


class LiteLLMParams(_LiteLLMSection):
    """``model_list[].litellm_params``. Only the keys the gateway acts on are typed."""

    # ``provider/model`` as LiteLLM spells it (``openai/gpt-4o``, ``anthropic/claude-...``); may hold ``*``.
    model: str
    custom_llm_provider: str | None = None
    api_base: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    api_version: str | None = None
    organization: str | None = None
    timeout: PositiveFloat | None = None
    stream_timeout: PositiveFloat | None = None
    max_retries: NonNegativeInt | None = None
    drop_params: bool | None = None
    # Routing (LiteLLM's spellings): this deployment's share under simple-shuffle, its requests / tokens
    # per minute (the router skips it at the limit; usage-based-routing prefers the most headroom), and
    # how often a failure here is retried before the router moves on (default router_settings').
    weight: PositiveFloat | None = None
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    num_retries: NonNegativeInt | None = None
    # Prices in USD per token, overriding the price table (cost/prices.py) for this deployment.
    input_cost_per_token: NonNegativeFloat | None = None
    output_cost_per_token: NonNegativeFloat | None = None
    cache_read_input_token_cost: NonNegativeFloat | None = None
    cache_creation_input_token_cost: NonNegativeFloat | None = None
    output_cost_per_reasoning_token: NonNegativeFloat | None = None
    # Largest upstream answer relayed (bytes); default gateway_settings.max_response_bytes.
    max_response_bytes: PositiveInt | None = None
    # When set, the deployment never calls upstream and answers with this text (LiteLLM's testing hook).
    mock_response: str | None = None
    use_chat_completions_api: bool | None = None
    headers: dict[str, str] | None = None
    extra_headers: dict[str, str] | None = None
    vertex_project: str | None = None
    vertex_location: str | None = None
    vertex_credentials: str | None = Field(default=None, repr=False)
    # Amazon Bedrock, in LiteLLM's spellings (config/bedrock.py): static keys, a profile, a web identity
    # token (or its file) and the role it assumes, the region, VPC / PrivateLink endpoints, a guardrail.
    aws_access_key_id: str | None = Field(default=None, repr=False)
    aws_secret_access_key: str | None = Field(default=None, repr=False)
    aws_session_token: str | None = Field(default=None, repr=False)
    aws_region_name: str | None = None
    aws_profile_name: str | None = None
    aws_web_identity_token: str | None = Field(default=None, repr=False)
    aws_role_name: str | None = None
    aws_session_name: str | None = None
    aws_bedrock_runtime_endpoint: str | None = None
    aws_sts_endpoint: str | None = None
    guardrailConfig: dict[str, Any] | None = None
    # Azure AI Foundry: an Entra ID access token, sent as `Authorization: Bearer` instead of `api-key`.
    azure_ad_token: str | None = Field(default=None, repr=False)
    # A `credential_list` entry whose values fill the keys this deployment does not set (LiteLLM's rule;
    # merged by the loader before validation).
    litellm_credential_name: str | None = None
    # Who runs a request's `mcp` tools on an OpenAI-native deployment: "upstream" (the default: OpenAI
    # connects to the server itself) or "gateway" (the gateway lists and calls the tools and offers them
    # to the model as functions, e.g. for servers inside the cluster). Other providers: always the
    # gateway. Registered servers (`mcp_servers`) always run in the gateway.
    mcp_execution: Literal["upstream", "gateway"] | None = None


class ModelInfo(BaseModel):
    # Free-form metadata in LiteLLM (mode, base_model, costs...): kept, never warned about.
    model_config = ConfigDict(extra="allow")
    id: str | None = None


class Deployment(_Strict):
    """One ``model_list`` entry: the public ``model_name`` and how to reach it."""

    model_name: str
    litellm_params: LiteLLMParams
    model_info: ModelInfo = Field(default_factory=ModelInfo)


class LiteLLMSettings(_LiteLLMSection):
    drop_params: bool = False
    num_retries: NonNegativeInt | None = None
    request_timeout: PositiveFloat | None = None
    # LiteLLM's docs place the fallbacks here as well as under router_settings (which wins).
    fallbacks: Fallbacks | None = None
    context_window_fallbacks: Fallbacks | None = None
    content_policy_fallbacks: Fallbacks | None = None
    # ``["otel"]`` turns the OpenTelemetry traces on (gateway_settings.telemetry.otel does too).
    callbacks: list[str] | None = None


class GeneralSettings(_LiteLLMSection):
    # When set, every request must carry ``Authorization: Bearer <master_key>``.
    master_key: str | None = Field(default=None, repr=False)


class RouterSettings(_LiteLLMSection):
    # Any string is accepted so a LiteLLM file with e.g. ``latency-based-routing`` still loads; the loader
    # warns and ``effective_strategy`` falls back to simple-shuffle.
    routing_strategy: str = "simple-shuffle"
    num_retries: NonNegativeInt | None = None
    retry_after: NonNegativeFloat = 0.0
    timeout: PositiveFloat | None = None
    stream_timeout: PositiveFloat | None = None
    fallbacks: Fallbacks | None = None
    # Tried instead of ``fallbacks`` when the upstream said the input is too long for the model /
    # refused it for its content policy.
    context_window_fallbacks: Fallbacks | None = None
    content_policy_fallbacks: Fallbacks | None = None
    allowed_fails: NonNegativeInt | None = None
    cooldown_time: NonNegativeFloat | None = None
    # ``{"gpt-4": "gpt-4o"}``: requests for gpt-4 are served by the gpt-4o deployments.
    model_group_alias: dict[str, str] = Field(default_factory=dict)

    @property
    def effective_strategy(self) -> RoutingStrategy:
        if self.routing_strategy in ROUTING_STRATEGY_ALIASES:
            return ROUTING_STRATEGY_ALIASES[self.routing_strategy]
        for known in SUPPORTED_ROUTING_STRATEGIES:
            if self.routing_strategy == known:
                return known
        return "simple-shuffle"


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: object) -> object:
    """``"30d"`` / ``"12h"`` / ``"90m"`` / ``"45s"`` -> seconds; numbers pass through."""
    if isinstance(value, str) and value[-1:] in _UNITS:
        try:
            return float(value[:-1]) * _UNITS[value[-1]]
        except ValueError:
            raise ValueError(f"{value!r} is not a duration (e.g. 3600, '90m', '12h', '30d')") from None
    return value


class StoreSettings(_Strict):
    """Where responses are stored (for ``previous_response_id``, GET, cancel...)."""

    type: Literal["sqlite", "postgres", "redis"] = "sqlite"
    # sqlite only; ``:memory:`` keeps everything in process (lost on restart).
    path: str = DEFAULT_SQLITE_PATH
    # postgres / redis only, e.g. ``postgresql://user:pw@host/db``; may be ``os.environ/DATABASE_URL``.
    url: str | None = Field(default=None, repr=False)
    # Seconds between the health checks' probes of the store (a small read and write; see health.py).
    probe_seconds: PositiveFloat = 5.0
    # Responses older than this are deleted with their items and events: seconds, or "90m", "12h", "30d".
    # Unset: kept until deleted.
    ttl: Annotated[PositiveFloat | None, BeforeValidator(_duration)] = None
    # A running response's lease, renewed by its replica every quarter of it. When a replica dies,
    # another one (or the next start of a single SQLite replica) fails its responses once it expired.
    lease_seconds: Annotated[PositiveFloat, BeforeValidator(_duration)] = 20.0
    # A background response with `store: false` is stored while it runs (it is polled) and deleted this
    # long after it ended (OpenAI keeps such responses about ten minutes). Foreground ones are never stored.
    stateless_background_seconds: Annotated[NonNegativeFloat, BeforeValidator(_duration)] = 600.0

    @model_validator(mode="after")
    def _url_for_servers(self) -> StoreSettings:
        if self.type != "sqlite" and not self.url:
            raise ValueError(f"store type {self.type!r} needs a url")
        return self


class HttpSettings(_Strict):
    """Bounds on what a REST client (or a scraper of a separate metrics port) can hold on to."""

    # A request head (request line and headers) must be complete this many seconds after the connection
    # opened, or after its first byte on a reused connection; else the connection is closed (408 when part
    # of a head had arrived).
    header_timeout_seconds: PositiveFloat = 10.0
    # The whole request body must arrive within this many seconds of the head (total time, not idle time
    # between chunks, so trickling a byte at a time does not help); else 408 and the connection is closed.
    # Raise it for large bodies over slow links. Only receiving the request counts: a response, and so a
    # long SSE stream, is never timed.
    body_timeout_seconds: PositiveFloat = 30.0
    # Open TCP connections per listening port (idle keep-alive and streaming ones included). A connection
    # past the limit is answered 503 (OpenAI error JSON) and closed at once.
    max_connections: PositiveInt = 1000


class MetricsSettings(_Strict):
    """Who may read the Prometheus metrics, and where."""

    # With a master key configured: /metrics needs ``Authorization: Bearer <master key>`` too. Without
    # one it is open either way (the gateway warns at start-up).
    require_key: bool = False
    # Serve /metrics on this port (same host) instead of the REST port; 0 lets the OS pick one. Unset: on
    # the REST port.
    port: Annotated[int, Field(ge=0, le=65535)] | None = None


class McpSettings(_Strict):
    """The gateway's own MCP client (domain/tools/): which servers a request may name, and its limits."""

    # Glob patterns (fnmatch, matched against the whole URL) a client-supplied `server_url` must match;
    # empty: client-supplied URLs are refused (registered `mcp_servers` are always allowed). Link-local
    # and cloud metadata addresses are refused whatever the patterns say.
    allowed_server_urls: list[str] = Field(default_factory=list)
    # Upstream turns one response may continue with the results of MCP calls (then it ends).
    max_rounds: PositiveInt = 8
    # Longest one MCP operation (connect + list, or connect + one call) may take; then it is an error.
    call_timeout_seconds: PositiveFloat = 60.0
    # Largest tool output (UTF-8 bytes of its text) passed on to the model; larger is an error.
    max_output_bytes: PositiveInt = 1024 * 1024


class BackoffSettings(_Strict):
    """The wait before trying the same deployment again (another deployment is tried at once)."""

    # base * 2^(attempt on that deployment - 1), times a random factor in [0.5, 1] (jitter), at least
    # router_settings.retry_after; an upstream's Retry-After replaces it. Never more than max_seconds.
    base_seconds: NonNegativeFloat = 0.05
    max_seconds: NonNegativeFloat = 5.0


class OtelSettings(_Strict):
    """OpenTelemetry traces (GenAI semantic conventions): off unless enabled here or by
    ``litellm_settings.callbacks: ["otel"]``."""

    enabled: bool = False
    # OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces. Unset: the exporter's own
    # environment variables (OTEL_EXPORTER_OTLP_ENDPOINT...) decide.
    endpoint: str | None = None
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    service_name: str = "responses-gateway"


class TelemetrySettings(_Strict):
    """Request logs and traces."""

    # One JSON line per request on the ``responses_gateway.requests`` logger (request id, model,
    # deployment, status, latency, tokens, cost). Off: no line at all.
    request_log: bool = True
    # Also log the request's input and the response's output in that line (they may hold personal data).
    log_prompts: bool = False
    otel: OtelSettings = Field(default_factory=OtelSettings)


class GatewaySettings(_Strict):
    """This gateway's own settings (not a LiteLLM section)."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    max_request_body_bytes: PositiveInt = DEFAULT_MAX_REQUEST_BODY_BYTES
    # Largest upstream answer a deployment may send (a body, or a whole stream), unless its
    # litellm_params.max_response_bytes says otherwise: past it the response fails cleanly, so what
    # the store holds is what the client saw (gRPC cannot send messages over 64 MiB).
    max_response_bytes: Annotated[int, Field(ge=1, le=48 * 1024 * 1024)] = 32 * 1024 * 1024
    # How long streamed events may be batched before being written to the store; clients get each event
    # as it comes. 0 writes every event at once.
    stream_event_flush_ms: NonNegativeInt = 50
    # Used when neither the deployment nor router/litellm settings give a timeout (seconds).
    request_timeout: PositiveFloat = 600.0
    stream_timeout: PositiveFloat = 600.0
    # Ids the gateway does not hold (responses made at an OpenAI-native upstream directly) are asked of
    # one upstream: "auto" = the only OpenAI-native upstream, if exactly one (by api_base and key) is
    # configured; a model_name = that model's native deployment; "off" = never (404).
    native_lookup: str = "auto"
    # A lookup never waits longer than this; any failure of it answers 404, never a 5xx.
    native_lookup_timeout_seconds: PositiveFloat = 5.0
    # Seals the gateway's own compaction items (`POST /responses/compact` on upstreams without one): a
    # long random string, usually `os.environ/GATEWAY_COMPACTION_KEY`. Unset: a random key per process,
    # so such items do not survive a restart and are refused by other replicas.
    compaction_key: str | None = Field(default=None, repr=False)
    host: str = "0.0.0.0"
    grpc_port: Annotated[int, Field(ge=1, le=65535)] = 50051
    http_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    http: HttpSettings = Field(default_factory=HttpSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    backoff: BackoffSettings = Field(default_factory=BackoffSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    @model_validator(mode="after")
    def _metrics_port_free(self) -> GatewaySettings:
        if self.metrics.port and self.metrics.port in (self.http_port, self.grpc_port):
            raise ValueError(f"metrics.port {self.metrics.port} is already the http_port or grpc_port")
        return self


def _stringify_env(value: Any) -> Any:
    # YAML reads ``REDIS_PORT: 6379`` as an int; the environment only holds strings.
    if isinstance(value, dict):
        return {
            k: str(v).lower() if isinstance(v, bool) else str(v) if isinstance(v, int | float) else v
            for k, v in value.items()
        }
    return value


class McpServerConfig(_LiteLLMSection):
    """One entry of LiteLLM's top-level ``mcp_servers`` section: a server requests name with
    ``server_url: "litellm_proxy/mcp/<name>"`` (or all of them with ``"litellm_proxy"``), whose URL and
    secrets stay here."""

    url: str
    # LiteLLM's spelling: "http" is streamable HTTP; "stdio" is not offered by this gateway.
    transport: Literal["http", "streamable_http", "sse"] = "http"
    description: str | None = None
    # Sent with every request to the server (values may be ``os.environ/NAME``).
    static_headers: dict[str, str] = Field(default_factory=dict, repr=False)
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    # LiteLLM's auth shorthand: the token goes into the header the type names.
    auth_type: Literal["none", "bearer_token", "api_key", "basic", "authorization"] | None = None
    authentication_token: str | None = Field(default=None, repr=False)

    def all_headers(self) -> dict[str, str]:
        out = {**self.static_headers, **self.headers}
        token = self.authentication_token
        if token and self.auth_type == "bearer_token":
            out["Authorization"] = f"Bearer {token}"
        elif token and self.auth_type == "basic":
            out["Authorization"] = f"Basic {token}"
        elif token and self.auth_type == "authorization":
            out["Authorization"] = token
        elif token and self.auth_type == "api_key":
            out["X-API-Key"] = token
        return out


class CredentialItem(_LiteLLMSection):
    """One entry of LiteLLM's top-level ``credential_list``: values (api_key, api_base, vertex_*...,
    each may be ``os.environ/NAME``) that deployments reuse through ``litellm_credential_name``."""

    credential_name: str
    credential_values: dict[str, Any] = Field(default_factory=dict, repr=False)
    credential_info: dict[str, Any] = Field(default_factory=dict)


class GatewayConfig(_Strict):
    model_list: list[Deployment] = Field(default_factory=list)
    litellm_settings: LiteLLMSettings = Field(default_factory=LiteLLMSettings)
    general_settings: GeneralSettings = Field(default_factory=GeneralSettings)
    router_settings: RouterSettings = Field(default_factory=RouterSettings)
    # Set into the process environment at load, before ``os.environ/`` references are resolved.
    environment_variables: Annotated[dict[str, str], BeforeValidator(_stringify_env)] = Field(
        default_factory=dict, repr=False
    )
    gateway_settings: GatewaySettings = Field(default_factory=GatewaySettings)
    mcp_servers: dict[str, McpServerConfig] = Field(default_factory=dict)
    credential_list: list[CredentialItem] = Field(default_factory=list)


# LiteLLM top-level sections the gateway has no use for: accepted with a warning rather than rejected, so a
# LiteLLM file loads. Anything else unknown at the top level is an error.
IGNORED_LITELLM_SECTIONS = frozenset(
    {
        "guardrails",
        "callback_settings",
        "files_settings",
        "finetune_settings",
        "assistant_settings",
        "search_tools",
        "vector_store_registry",
        "prompts",
        "pass_through_endpoints",
        "model_group_settings",
    }
)
LITELLM_SECTIONS = ("litellm_settings", "general_settings", "router_settings")
