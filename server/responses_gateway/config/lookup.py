"""Which deployments serve a requested model name.

The rule, in order (the first step that finds anything wins):

1. ``router_settings.model_group_alias`` renames the request once (``gpt-4`` -> ``gpt-4o``).
2. Exact match: every deployment whose ``model_name`` equals the request (several = a load-balanced group).
3. Wildcard ``model_name``s (containing ``*``), most specific first: longer pattern first, then the one with
   more ``*``s, then config order (LiteLLM's ordering). ``*`` matches any run of characters and the whole
   request must match. All deployments sharing the first matching pattern are returned, each with the
   matched parts substituted, in order, into the ``*``s of its ``litellm_params.model``:
   ``openai/*`` -> ``openai/*`` maps ``openai/gpt-4o`` to upstream ``gpt-4o``; ``*`` -> ``*`` passes any
   request through (its provider then comes from the request's own prefix). A ``litellm_params.model``
   without ``*`` is used as written.
4. A request without a provider prefix is retried as ``<guessed provider>/<request>`` (``gpt-4o`` ->
   ``openai/gpt-4o``), so a bare name reaches an ``openai/*`` route, as in LiteLLM.

Disabled deployments are returned too: the caller filters on ``enabled`` and, when none is left, can tell
the client why (``disabled_reason``) instead of "unknown model".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from .providers import infer_provider
from .resolve import ResolvedDeployment

# (template deployment, its litellm model with the wildcards filled in, the requested name) -> resolved
WildcardResolver = Callable[[ResolvedDeployment, str, str], ResolvedDeployment]


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(re.escape(pattern).replace(r"\*", "(.*)"))


def substitute_wildcards(match: re.Match[str], target: str) -> str:
    """Fill ``target``'s ``*``s with the groups ``match`` captured (LiteLLM's rule, including its fallback
    to the whole request when there are more captured parts than ``*``s to put them in)."""
    if "*" not in target:
        return target
    groups = match.groups()
    if len(groups) > target.count("*"):
        return match.string
    for part in groups:
        target = target.replace("*", part, 1)
    return target


def _specificity(pattern: str) -> tuple[int, int]:
    return (len(pattern), pattern.count("*"))


def _match_patterns(
    requested: str, deployments: Sequence[ResolvedDeployment], resolve: WildcardResolver
) -> list[ResolvedDeployment]:
    patterns: dict[str, list[ResolvedDeployment]] = {}
    for d in deployments:
        if d.is_wildcard:
            patterns.setdefault(d.model_name, []).append(d)
    # sorted() is stable, so equally specific patterns keep config order.
    for pattern in sorted(patterns, key=_specificity, reverse=True):
        match = wildcard_regex(pattern).fullmatch(requested)
        if match is not None:
            return [
                resolve(d, substitute_wildcards(match, d.litellm_model), requested) for d in patterns[pattern]
            ]
    return []


def lookup_deployments(
    requested: str,
    deployments: Sequence[ResolvedDeployment],
    *,
    resolve_wildcard: WildcardResolver,
    aliases: Mapping[str, str] | None = None,
) -> list[ResolvedDeployment]:
    """Deployments that serve ``requested`` (see the module docstring for the rule); [] when none."""
    name = (aliases or {}).get(requested, requested)
    exact = [d for d in deployments if d.model_name == name and not d.is_wildcard]
    if exact:
        return exact
    found = _match_patterns(name, deployments, resolve_wildcard)
    if found or "/" in name:
        return found
    guessed = infer_provider(name)
    return _match_patterns(f"{guessed}/{name}", deployments, resolve_wildcard) if guessed else []
