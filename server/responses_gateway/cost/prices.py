"""Prices per token, and a response's cost from its usage.

The table is genai-prices' snapshot, shipped in its wheel and read offline (its auto-update, which would
download a newer table, is never started). A deployment's own `input_cost_per_token` /
`output_cost_per_token` / `cache_read_input_token_cost` / `cache_creation_input_token_cost` /
`output_cost_per_reasoning_token` (LiteLLM's spellings) win over the table, field by field.

The table is slow to search (tens of µs, and ~0.3 s to load), so a deployment's rates are looked up once
per (deployment, model) and cached as plain floats: a response's cost is then a few multiplications.
Long-context tiers (the whole request at a higher rate past an input size, as genai-prices models them)
are kept and applied per response. No price, no cost: `None`, never 0.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from responses_gateway.config.providers import ProviderKind
from responses_gateway.config.resolve import PriceOverride, ResolvedDeployment
from responses_gateway.v1 import response_pb2

log = logging.getLogger(__name__)

# The gateway's provider -> genai-prices' provider id. Self-hosted servers (vLLM, Ollama) have no list
# price: they cost what the deployment's own prices say, or are unknown.
PROVIDER_IDS: dict[ProviderKind, str] = {
    ProviderKind.OPENAI: "openai",
    ProviderKind.AZURE: "azure",
    ProviderKind.ANTHROPIC: "anthropic",
    ProviderKind.GEMINI: "google",
    ProviderKind.VERTEX_AI: "google",
    ProviderKind.GROQ: "groq",
    ProviderKind.MISTRAL: "mistral",
    ProviderKind.TOGETHER_AI: "together",
    ProviderKind.DEEPSEEK: "deepseek",
    ProviderKind.XAI: "x-ai",
    ProviderKind.OPENROUTER: "openrouter",
    ProviderKind.FIREWORKS_AI: "fireworks",
    ProviderKind.PERPLEXITY: "perplexity",
}
_PER_MTOK = 1e-6
_CACHE_LIMIT = 4096  # (deployment, model) pairs; upstream-reported snapshots could otherwise grow it


Tiers = tuple[tuple[int, float], ...]  # (input tokens above which, rate), highest threshold first


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token. `tiers` maps a field's name to its long-context tiers."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    reasoning: float
    source: str  # "table" / "config" / "table+config": what the README calls the price's origin
    tiers: tuple[tuple[str, Tiers], ...] = ()

    def cost(self, usage: response_pb2.Usage) -> float:
        """OpenAI's usage: input_tokens include the cached ones, output_tokens the reasoning ones."""
        cached = usage.input_tokens_details.cached_tokens
        written = usage.input_tokens_details.cache_write_tokens
        reasoning = usage.output_tokens_details.reasoning_tokens
        rates = self._tiered(usage.input_tokens) if self.tiers else self
        plain_in = max(usage.input_tokens - cached - written, 0)
        plain_out = max(usage.output_tokens - reasoning, 0)
        return (
            plain_in * rates.input
            + cached * rates.cache_read
            + written * rates.cache_write
            + plain_out * rates.output
            + reasoning * rates.reasoning
        )

    def _tiered(self, input_tokens: int) -> Rates:
        values = {f: getattr(self, f) for f in ("input", "output", "cache_read", "cache_write", "reasoning")}
        for name, tiers in self.tiers:
            for start, rate in tiers:
                if input_tokens > start:
                    values[name] = rate
                    break
        return Rates(**values, source=self.source)


class PriceBook:
    """The rates of each (deployment, model) pair, looked up once."""

    def __init__(self) -> None:
        self._rates: dict[tuple[str, str], Rates | None] = {}

    def cost(
        self, deployment: ResolvedDeployment, usage: response_pb2.Usage, reported_model: str = ""
    ) -> float | None:
        """USD for `usage` on `deployment`; `reported_model` is the snapshot the upstream named."""
        rates = self.rates(deployment, reported_model or deployment.upstream_model)
        return None if rates is None else rates.cost(usage)

    def rates(self, deployment: ResolvedDeployment, model: str) -> Rates | None:
        key = (deployment.deployment_id, model)
        try:
            return self._rates[key]
        except KeyError:
            pass
        if len(self._rates) >= _CACHE_LIMIT:
            self._rates.clear()
        found = _merge(deployment.prices, _table(deployment.provider, model))
        if found is None and model != deployment.upstream_model:
            # A snapshot the table does not know (yet): the configured model's price, if any.
            found = self.rates(deployment, deployment.upstream_model)
        self._rates[key] = found
        return found

    def warm(self, deployments: tuple[ResolvedDeployment, ...]) -> None:
        """Load the table and look up every configured deployment now, not on a first request."""
        for d in deployments:
            if d.enabled and not d.is_wildcard:
                self.rates(d, d.upstream_model)


_TableEntry = tuple[dict[str, float], dict[str, Tiers]]


def _table(provider: ProviderKind | None, model: str) -> _TableEntry | None:
    provider_id = PROVIDER_IDS.get(provider) if provider is not None else None
    if provider_id is None:
        return None
    from genai_prices import data_snapshot  # imported on first use: ~0.3 s, only with a priced provider
    from genai_prices.types import TieredPrices

    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    price = info.get_prices(datetime.datetime.now(datetime.UTC))
    flat: dict[str, float] = {}
    tiers: dict[str, Tiers] = {}
    for ours, theirs in (
        ("input", "input_mtok"),
        ("output", "output_mtok"),
        ("cache_read", "cache_read_mtok"),
        ("cache_write", "cache_write_mtok"),
    ):
        value = getattr(price, theirs, None)
        if isinstance(value, TieredPrices):
            flat[ours] = float(value.base) * _PER_MTOK
            tiers[ours] = tuple(
                (t.start, float(t.price) * _PER_MTOK) for t in sorted(value.tiers, key=lambda t: -t.start)
            )
        elif value is not None:
            flat[ours] = float(value) * _PER_MTOK
    return flat, tiers


def _merge(override: PriceOverride, table: _TableEntry | None) -> Rates | None:
    flat, tiers = table if table is not None else ({}, {})
    chosen = {
        "input": override.input if override.input is not None else flat.get("input"),
        "output": override.output if override.output is not None else flat.get("output"),
    }
    if chosen["input"] is None or chosen["output"] is None:
        return None  # half a price is no price: say unknown rather than undercount
    cache_read = override.cache_read if override.cache_read is not None else flat.get("cache_read")
    cache_write = override.cache_write if override.cache_write is not None else flat.get("cache_write")
    # A field the config overrides drops the table's tiers for that field; reasoning is output.
    kept = {name: t for name, t in tiers.items() if getattr(override, name) is None}
    if "output" in kept and override.reasoning is None:
        kept["reasoning"] = kept["output"]
    source = "config" if table is None else "table+config" if override.is_set else "table"
    return Rates(
        input=chosen["input"],
        output=chosen["output"],
        # Without a cache price, cached tokens cost what input does (no discount is assumed).
        cache_read=cache_read if cache_read is not None else chosen["input"],
        cache_write=cache_write if cache_write is not None else chosen["input"],
        reasoning=override.reasoning if override.reasoning is not None else chosen["output"],
        source=source,
        tiers=tuple(kept.items()),
    )
