"""LiteLLM's ``os.environ/NAME`` secret references.

Any string value that is exactly ``os.environ/NAME`` is replaced by the value of the environment variable
``NAME`` (LiteLLM's syntax; it is not interpolated inside longer strings). A variable that is unset or empty
is *not* an error here: it is reported as missing and the value becomes ``None``, so the caller decides.
For deployments that means "disabled until you set NAME", which lets the gateway start with no keys at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "os.environ/"

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class MissingEnv:
    """A reference whose variable is unset: where it was (``loc``) and what to set (``name``)."""

    loc: Loc
    name: str


def env_ref_name(value: object) -> str | None:
    """``"os.environ/OPENAI_API_KEY"`` -> ``"OPENAI_API_KEY"``; anything else -> None."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :].strip()
        return name or None
    return None


def lookup_env(env: Mapping[str, str], name: str) -> str | None:
    # An empty variable counts as unset: `.env` templates often ship `OPENAI_API_KEY=`.
    value = env.get(name)
    return value if value else None


def resolve_env_refs(value: Any, env: Mapping[str, str], loc: Loc = ()) -> tuple[Any, list[MissingEnv]]:
    """Return ``value`` with every ``os.environ/NAME`` string (at any depth of dicts and lists) resolved,
    and the references that could not be. The input is not modified."""
    missing: list[MissingEnv] = []
    resolved = _walk(value, env, loc, missing)
    return resolved, missing


def _walk(value: Any, env: Mapping[str, str], loc: Loc, missing: list[MissingEnv]) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, env, (*loc, str(k)), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, env, (*loc, i), missing) for i, v in enumerate(value)]
    name = env_ref_name(value)
    if name is None:
        return value
    found = lookup_env(env, name)
    if found is None:
        missing.append(MissingEnv(loc, name))
    return found
