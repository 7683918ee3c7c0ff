"""Gateway configuration: one LiteLLM-compatible YAML file (see ``config/gateway.yaml``)."""

from .errors import ConfigError
from .loader import LoadedConfig, RoutingPolicy, load_config
from .lookup import lookup_deployments
from .models import (
    Deployment,
    GatewayConfig,
    GatewaySettings,
    GeneralSettings,
    LiteLLMParams,
    LiteLLMSettings,
    ModelInfo,
    RouterSettings,
    RoutingStrategy,
    StoreSettings,
)
from .providers import PROVIDERS, AdapterKind, AuthStyle, ProviderKind, ProviderSpec, parse_model
from .resolve import DeploymentDefaults, ResolvedDeployment, resolve_deployment
from .secrets import resolve_env_refs

__all__ = [
    "PROVIDERS",
    "AdapterKind",
    "AuthStyle",
    "ConfigError",
    "Deployment",
    "DeploymentDefaults",
    "GatewayConfig",
    "GatewaySettings",
    "GeneralSettings",
    "LiteLLMParams",
    "LiteLLMSettings",
    "LoadedConfig",
    "ModelInfo",
    "ProviderKind",
    "ProviderSpec",
    "ResolvedDeployment",
    "RouterSettings",
    "RoutingPolicy",
    "RoutingStrategy",
    "StoreSettings",
    "load_config",
    "lookup_deployments",
    "parse_model",
    "resolve_deployment",
    "resolve_env_refs",
]
