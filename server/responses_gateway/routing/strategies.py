"""The routing strategies: pure orderings of a model's available deployments (no I/O, no clock).

Each returns every deployment it is given, best first; the router tries them in that order.
LiteLLM's names: simple-shuffle (weighted random, the default), round-robin, least-busy,
latency-based-routing, usage-based-routing (also spelled usage-based-routing-v2).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.routing.state import DeploymentState

States = Callable[[ResolvedDeployment], DeploymentState]


def weighted_shuffle(
    deployments: Sequence[ResolvedDeployment], rng: random.Random
) -> list[ResolvedDeployment]:
    """A random order where each deployment comes first with probability weight / sum of weights
    (Efraimidis-Spirakis: sort by u^(1/w), u uniform in (0, 1])."""
    keyed = [(1.0 - rng.random()) ** (1.0 / d.weight) for d in deployments]
    order = sorted(range(len(deployments)), key=keyed.__getitem__, reverse=True)
    return [deployments[i] for i in order]


def rotate(deployments: Sequence[ResolvedDeployment], turn: int) -> list[ResolvedDeployment]:
    start = turn % len(deployments)
    return [*deployments[start:], *deployments[:start]]


def least_busy(
    deployments: Sequence[ResolvedDeployment], state: States, rng: random.Random
) -> list[ResolvedDeployment]:
    """Fewest requests in flight first; ties in random order, so idle deployments share the load."""
    return sorted(deployments, key=lambda d: (state(d).in_flight, rng.random()))


def lowest_latency(
    deployments: Sequence[ResolvedDeployment], state: States, rng: random.Random
) -> list[ResolvedDeployment]:
    """Deployments never measured first (so each gets measured), then the fastest recent latency."""
    return sorted(deployments, key=lambda d: (state(d).latency, rng.random()))


def most_headroom(
    deployments: Sequence[ResolvedDeployment], state: States, rng: random.Random
) -> list[ResolvedDeployment]:
    """The smallest share of this minute's rpm / tpm used first; without limits, the fewest tokens."""
    return sorted(
        deployments,
        key=lambda d: (state(d).utilisation(d.rpm, d.tpm), state(d).tokens, rng.random()),
    )
