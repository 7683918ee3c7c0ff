"""Read, check and resolve the YAML config file.

Order matters and mirrors LiteLLM: ``environment_variables`` are set first, then ``os.environ/``
references are resolved, then the result is validated (so a referenced value is type-checked like a literal
one), then each deployment is resolved against its provider.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import ConfigError, format_loc
from .lookup import lookup_deployments
from .models import IGNORED_LITELLM_SECTIONS, LITELLM_SECTIONS, GatewayConfig, RoutingStrategy
from .providers import AdapterKind, ProviderKind
from .resolve import DeploymentDefaults, ResolvedDeployment, resolve_deployment
from .secrets import resolve_env_refs
from .yaml_source import read_yaml

# What a reload cannot change in a running process: the listeners, their limits and the store are opened
# once at start-up, and the transports hold the master key check. A reload applies everything else and
# names these when they changed.
RESTART_ONLY: tuple[tuple[str, ...], ...] = (
    ("gateway_settings", "host"),
    ("gateway_settings", "grpc_port"),
    ("gateway_settings", "http_port"),
    ("gateway_settings", "http"),
    ("gateway_settings", "metrics"),
    ("gateway_settings", "max_request_body_bytes"),
    ("gateway_settings", "store"),
    ("general_settings", "master_key"),
)

# Sections whose unset os.environ/ references stop start-up: starting without the auth or the store the
# file asks for would be worse than not starting.
_FATAL_WHEN_MISSING = {("general_settings", "master_key"), ("gateway_settings",), ("mcp_servers",)}


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """Router behaviour, merged from ``router_settings`` and ``litellm_settings`` (router_settings wins)."""

    strategy: RoutingStrategy = "simple-shuffle"
    num_retries: int = 0
    retry_after: float = 0.0
    allowed_fails: int = 3  # LiteLLM's default
    cooldown_time: float = 5.0  # seconds; LiteLLM's default
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Tried instead of `fallbacks` for a context-length / content-policy refusal.
    context_window_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    content_policy_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    backoff_base: float = 0.05  # seconds; see gateway_settings.backoff
    backoff_max: float = 5.0
    model_group_alias: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedConfig:
    path: Path
    config: GatewayConfig
    deployments: tuple[ResolvedDeployment, ...]  # one per model_list entry, in order
    warnings: tuple[str, ...]
    routing: RoutingPolicy
    defaults: DeploymentDefaults
    master_key: str | None = field(default=None, repr=False)
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    # model_list index -> litellm_params key -> unset variables it referenced (to re-resolve wildcards)
    missing_env: Mapping[int, Mapping[str, tuple[str, ...]]] = field(default_factory=dict, repr=False)

    @property
    def auth_enabled(self) -> bool:
        return self.master_key is not None

    def lookup(self, model: str) -> list[ResolvedDeployment]:
        """Deployments serving ``model``, disabled ones included (see ``config.lookup`` for the rule)."""
        return lookup_deployments(
            model,
            self.deployments,
            resolve_wildcard=self._resolve_wildcard,
            aliases=self.routing.model_group_alias,
        )

    def model_names(self) -> list[str]:
        """Public names of the enabled, non-wildcard deployments, deduplicated in config order."""
        return list(dict.fromkeys(d.model_name for d in self.deployments if d.enabled and not d.is_wildcard))

    def status_lines(self) -> list[str]:
        """One line per deployment for start-up logs: which are live, and what enables the others."""
        lines = []
        for d in self.deployments:
            state = "enabled" if d.enabled else f"disabled: {d.disabled_reason}"
            lines.append(f"{d.model_name} -> {d.litellm_model}: {state}")
        return lines

    def _resolve_wildcard(
        self, template: ResolvedDeployment, model: str, requested: str
    ) -> ResolvedDeployment:
        resolved = resolve_deployment(
            self.config.model_list[template.index],
            index=template.index,
            env=self.env,
            defaults=self.defaults,
            missing_env=self.missing_env.get(template.index),
            model_override=model,
        )
        return dataclasses.replace(
            resolved, model_name=requested, deployment_id=f"{template.deployment_id}:{requested}"
        )


def load_config(
    path: str | os.PathLike[str], *, environ: MutableMapping[str, str] | None = None
) -> LoadedConfig:
    """Load ``path``. ``environ`` defaults to ``os.environ``; ``environment_variables`` are written into it.
    Raises ``ConfigError`` naming the file, the key path and the problem."""
    label = str(path)
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    raw = read_yaml(Path(path), label)
    warnings: list[str] = []
    problems: list[str] = []

    known = set(GatewayConfig.model_fields)
    for key in list(raw):
        if key in IGNORED_LITELLM_SECTIONS:
            warnings.append(f"ignored: {key} (LiteLLM section this gateway does not use)")
            del raw[key]
        elif key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(sorted(known))}"
            problems.append(f"{label}: {key}: unknown top-level key ({hint})")
    if problems:
        raise ConfigError(problems)

    # environment_variables first: os.environ/ references elsewhere may point at them.
    env_vars, missing = resolve_env_refs(
        raw.get("environment_variables") or {}, env, ("environment_variables",)
    )
    if isinstance(env_vars, dict):
        for k, v in env_vars.items():
            if v is not None and not isinstance(v, dict | list):
                env[str(k)] = str(v).lower() if isinstance(v, bool) else str(v)
    warnings.extend(f"{format_loc(m.loc)}: os.environ/{m.name} is not set" for m in missing)

    problems.extend(_merge_credentials(raw, label))
    if problems:
        raise ConfigError(problems)

    missing_env: dict[int, dict[str, tuple[str, ...]]] = {}
    resolved_raw: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "model_list" and isinstance(value, list):
            resolved_raw[key] = [_resolve_entry(i, e, env, missing_env) for i, e in enumerate(value)]
            continue
        resolved, missing = resolve_env_refs(value, env, (key,))
        resolved_raw[key] = value if key == "environment_variables" else resolved
        for m in missing if key != "environment_variables" else []:
            msg = f"{format_loc(m.loc)}: os.environ/{m.name} is not set"
            if any(m.loc[: len(f)] == f for f in _FATAL_WHEN_MISSING):
                problems.append(f"{label}: {msg}")
            else:
                warnings.append(msg)
    if problems:
        raise ConfigError(problems)

    try:
        cfg = GatewayConfig.model_validate(resolved_raw)
    except ValidationError as exc:
        raise ConfigError([f"{label}: {_describe(err)}" for err in exc.errors()]) from None

    _check_ids(cfg, label)
    if not cfg.model_list:
        # Valid (health and GET work), but almost surely not what was meant.
        warnings.append(f"{label}: model_list is empty: every request that names a model will fail")
    warnings.extend(_ignored_keys(cfg))
    routing = _routing(cfg, warnings)
    defaults = _defaults(cfg)
    deployments = tuple(
        resolve_deployment(d, index=i, env=env, defaults=defaults, missing_env=missing_env.get(i))
        for i, d in enumerate(cfg.model_list)
    )
    warnings.extend(_deployment_hints(deployments))
    return LoadedConfig(
        Path(path),
        cfg,
        deployments,
        tuple(warnings),
        routing,
        defaults,
        cfg.general_settings.master_key,
        env,
        missing_env,
    )


def _merge_credentials(raw: dict[str, Any], label: str) -> list[str]:
    """Fill each deployment's ``litellm_params`` from the ``credential_list`` entry it names
    (``litellm_credential_name``), in place and before ``os.environ/`` references are resolved, so an
    unset variable there disables the deployment with "set NAME" like one written in the deployment.
    As in LiteLLM, a key the deployment sets itself wins, and the first entry of a name counts. A name
    that no entry has is an error: the deployment could only fail with a misleading "set ..._API_KEY"."""
    credentials: dict[str, dict[str, Any]] = {}
    for entry in raw.get("credential_list") or []:
        if isinstance(entry, dict) and isinstance(entry.get("credential_name"), str):
            values = entry.get("credential_values")
            credentials.setdefault(entry["credential_name"], values if isinstance(values, dict) else {})
    problems = []
    models = raw.get("model_list")
    for i, entry in enumerate(models if isinstance(models, list) else []):
        params = entry.get("litellm_params") if isinstance(entry, dict) else None
        name = params.get("litellm_credential_name") if isinstance(params, dict) else None
        if not isinstance(params, dict) or not isinstance(name, str):
            continue
        if name not in credentials:
            known = ", ".join(sorted(credentials)) or "none"
            problems.append(
                f"{label}: model_list[{i}].litellm_params.litellm_credential_name: {name!r} is not a "
                f"credential_name in credential_list (known: {known})"
            )
            continue
        for key, value in credentials[name].items():
            if params.get(key) is None:
                params[key] = value
    return problems


def _resolve_entry(
    index: int, entry: Any, env: Mapping[str, str], missing_env: dict[int, dict[str, tuple[str, ...]]]
) -> Any:
    # Only litellm_params may reference variables in a deployment; model_name and model_info stay literal.
    if not isinstance(entry, dict) or not isinstance(entry.get("litellm_params"), dict):
        return entry
    params, missing = resolve_env_refs(entry["litellm_params"], env)
    per_key: dict[str, tuple[str, ...]] = {}
    for m in missing:
        per_key[str(m.loc[0])] = (*per_key.get(str(m.loc[0]), ()), m.name)
    if per_key:
        missing_env[index] = per_key
    return {**entry, "litellm_params": params}


def _describe(err: Any) -> str:
    loc, kind = tuple(err["loc"]), err["type"]
    if kind == "extra_forbidden":
        msg = "unknown key"
    elif kind == "missing":
        msg = "required key is missing"
    else:
        msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{format_loc(loc)}: {msg}"


def _check_ids(cfg: GatewayConfig, label: str) -> None:
    seen: dict[str, int] = {}
    for i, d in enumerate(cfg.model_list):
        if d.model_info.id is None:
            continue
        if d.model_info.id in seen:
            raise ConfigError(
                [
                    f"{label}: model_list[{i}].model_info.id: {d.model_info.id!r} is already used "
                    f"by model_list[{seen[d.model_info.id]}]"
                ]
            )
        seen[d.model_info.id] = i


def _ignored_keys(cfg: GatewayConfig) -> list[str]:
    out = [
        f"ignored: {section}.{key}"
        for section in LITELLM_SECTIONS
        for key in (getattr(cfg, section).model_extra or {})
    ]
    out.extend(
        f"ignored: litellm_settings.callbacks: {name!r} (only 'otel' is supported)"
        for name in cfg.litellm_settings.callbacks or []
        if name != "otel"
    )
    for i, d in enumerate(cfg.model_list):
        out.extend(
            f"ignored: litellm_params.{key} in model_list[{i}]"
            for key in (d.litellm_params.model_extra or {})
        )
    for name, server in cfg.mcp_servers.items():
        out.extend(f"ignored: mcp_servers.{name}.{key}" for key in (server.model_extra or {}))
    return out


def _routing(cfg: GatewayConfig, warnings: list[str]) -> RoutingPolicy:
    rs, ls = cfg.router_settings, cfg.litellm_settings
    if rs.routing_strategy != rs.effective_strategy:
        warnings.append(
            f"router_settings.routing_strategy: {rs.routing_strategy!r} is not supported; "
            f"using {rs.effective_strategy!r}"
        )
    names = {d.model_name for d in cfg.model_list}
    has_wildcards = any("*" in n for n in names)

    def merged(kind: str) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for section in (ls, rs):  # router_settings last, so it wins
            for entry in getattr(section, kind) or []:
                out.update({k: tuple(v) for k, v in entry.items()})
        for src, targets in out.items():
            for name in (src, *targets):
                if name not in names and not has_wildcards:
                    warnings.append(f"{kind}: {name!r} is not a model_name in model_list")
        return out

    fallbacks = merged("fallbacks")
    backoff = cfg.gateway_settings.backoff
    return RoutingPolicy(
        strategy=rs.effective_strategy,
        num_retries=rs.num_retries if rs.num_retries is not None else (ls.num_retries or 0),
        retry_after=rs.retry_after,
        allowed_fails=rs.allowed_fails if rs.allowed_fails is not None else 3,
        cooldown_time=rs.cooldown_time if rs.cooldown_time is not None else 5.0,
        fallbacks=fallbacks,
        context_window_fallbacks=merged("context_window_fallbacks"),
        content_policy_fallbacks=merged("content_policy_fallbacks"),
        backoff_base=backoff.base_seconds,
        backoff_max=backoff.max_seconds,
        model_group_alias=dict(rs.model_group_alias),
    )


def _defaults(cfg: GatewayConfig) -> DeploymentDefaults:
    rs, ls, gs = cfg.router_settings, cfg.litellm_settings, cfg.gateway_settings
    timeout = rs.timeout or ls.request_timeout
    return DeploymentDefaults(
        timeout=timeout or gs.request_timeout,
        stream_timeout=rs.stream_timeout or timeout or gs.stream_timeout,
        drop_params=ls.drop_params,
        max_response_bytes=gs.max_response_bytes,
    )


def _deployment_hints(deployments: tuple[ResolvedDeployment, ...]) -> list[str]:
    # LiteLLM sends openai/ + a custom api_base to /chat/completions; this gateway uses the Responses API
    # there. Say so, since many OpenAI-compatible servers lack /responses.
    out = []
    for d in deployments:
        if (
            d.provider is ProviderKind.OPENAI
            and d.adapter is AdapterKind.RESPONSES
            and d.api_base
            and not d.api_base.startswith("https://api.openai.com")
        ):
            out.append(
                f"model_list[{d.index}] ({d.model_name}): openai/ calls {d.api_base}/responses; "
                "if that server only has Chat Completions, set use_chat_completions_api: true"
            )
    return out


@dataclass(frozen=True)
class Reloaded:
    """A config file read again for a running gateway (`reload_config`)."""

    config: LoadedConfig
    needs_restart: tuple[str, ...]  # dotted keys of RESTART_ONLY whose value changed
    # Variables the file's `environment_variables` set or changed: written into the process
    # environment only once the reload is applied, so a refused file changes nothing.
    env_updates: Mapping[str, str]


def reload_config(
    path: str | os.PathLike[str], current: LoadedConfig, environ: Mapping[str, str]
) -> Reloaded:
    """Load `path` again, validated exactly as at start-up, against a copy of `environ` (its
    os.environ/ references are resolved anew). Raises ConfigError; never touches `environ`."""
    env = dict(environ)
    loaded = load_config(path, environ=env)
    changed = tuple(
        ".".join(keys)
        for keys in RESTART_ONLY
        if _setting(current.config, keys) != _setting(loaded.config, keys)
    )
    updates = {k: v for k, v in env.items() if environ.get(k) != v}
    return Reloaded(loaded, changed, updates)


def _setting(cfg: GatewayConfig, keys: tuple[str, ...]) -> Any:
    value: Any = cfg
    for key in keys:
        value = getattr(value, key)
    return value
