"""Each routing strategy's spread over many requests, and the per-deployment rpm / tpm limits.

The router runs real attempts here, functions of the deployment they are handed, so a test decides how
long each deployment takes or how many tokens it uses, and counts where the requests went.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from responses_gateway.config import load_config
from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.registry import ProviderRegistry
from responses_gateway.routing.router import Router
from responses_gateway.telemetry.record import CallRecord


def deployment(ident: str, name: str = "m", **params: Any) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {"model": "openai/x", "mock_response": "ok", **params},
        "model_info": {"id": ident},
    }


def router(tmp_path: Path, models: list[dict[str, Any]], **settings: Any) -> Router:
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps({"model_list": models, "router_settings": settings}))
    return Router(load_config(path, environ={}), ProviderRegistry())


async def served(d: ResolvedDeployment, _: object) -> str:
    return d.deployment_id


async def test_simple_shuffle_follows_the_weights(tmp_path: Path) -> None:
    r = router(tmp_path, [deployment("heavy", weight=3), deployment("light", weight=1)])
    n = 4000
    counts = Counter([await r.first_success("m", served) for _ in range(n)])
    # 3:1 -> 75 % heavy; 4000 draws put 4 standard deviations at about +/- 2.7 %.
    assert 0.72 < counts["heavy"] / n < 0.78, counts


async def test_simple_shuffle_weighs_by_rpm_without_a_weight(tmp_path: Path) -> None:
    r = router(tmp_path, [deployment("big", rpm=9000), deployment("small", rpm=1000)])
    counts = Counter([await r.first_success("m", served) for _ in range(2000)])
    assert 0.86 < counts["big"] / 2000 < 0.94, counts


async def test_least_busy_sends_to_the_idle_deployment(tmp_path: Path) -> None:
    r = router(tmp_path, [deployment("a"), deployment("b"), deployment("c")], routing_strategy="least-busy")
    records = [CallRecord(f"req_{i}") for i in range(9)]

    async def slow(d: ResolvedDeployment, _: object) -> str:
        return d.deployment_id

    # Nine responses that stay open (their records not ended): three per deployment, never four.
    firsts = [await r.first_success("m", slow, rec) for rec in records]
    assert Counter(firsts) == {"a": 3, "b": 3, "c": 3}
    # End the three on "b": the next three all go there.
    for rec, got in zip(records, firsts, strict=True):
        if got == "b":
            rec.end()
    nxt = [await r.first_success("m", slow, CallRecord(f"req_n{i}")) for i in range(3)]
    assert nxt == ["b", "b", "b"]


async def test_latency_based_prefers_the_fastest(tmp_path: Path) -> None:
    r = router(
        tmp_path,
        [deployment("fast"), deployment("slow"), deployment("medium")],
        routing_strategy="latency-based-routing",
    )
    delay = {"fast": 0.001, "medium": 0.02, "slow": 0.05}

    async def timed(d: ResolvedDeployment, _: object) -> str:
        await asyncio.sleep(delay[d.deployment_id])
        return d.deployment_id

    got = [await r.first_success("m", timed) for _ in range(30)]
    assert set(got[:3]) == {"fast", "slow", "medium"}  # each measured once first
    assert Counter(got[3:]) == {"fast": 27}
    # The fast one slows down: the router moves to the one now fastest within a few requests.
    delay["fast"] = 0.1
    later = [await r.first_success("m", timed) for _ in range(10)]
    assert later[-5:] == ["medium"] * 5


async def test_usage_based_spreads_by_headroom_and_honours_rpm(tmp_path: Path) -> None:
    r = router(
        tmp_path,
        [deployment("a", rpm=10), deployment("b", rpm=30)],
        routing_strategy="usage-based-routing-v2",
    )
    got = Counter([await r.first_success("m", served) for _ in range(40)])
    assert got == {"a": 10, "b": 30}  # each filled in proportion, to its limit
    with pytest.raises(GatewayError) as caught:
        await r.first_success("m", served)
    assert caught.value.reason == Reason.RATE_LIMITED and 0 < (caught.value.retry_after or 0) <= 60


async def test_tpm_counts_the_tokens_of_ended_responses(tmp_path: Path) -> None:
    r = router(tmp_path, [deployment("a", tpm=100), deployment("b")], routing_strategy="usage-based-routing")
    rec = CallRecord("req_1")
    rec.prefer = lambda d: d.deployment_id == "a"
    assert await r.first_success("m", served, rec) == "a"
    rec.input_tokens, rec.output_tokens = 60, 50  # the response ends having used 110 tokens
    rec.end()
    assert r.state(r.config.lookup("m")[0]).tokens == 110
    # "a" is over its tpm for this minute: everything goes to "b", even a follow-up preferring "a".
    assert {await r.first_success("m", served, rec) for _ in range(5)} == {"b"}


async def test_per_request_num_retries_and_per_deployment_retries(tmp_path: Path) -> None:
    r = router(tmp_path, [deployment("a", num_retries=2), deployment("b")], routing_strategy="round-robin")
    tried: list[str] = []

    async def a_fails(d: ResolvedDeployment, _: object) -> str:
        tried.append(d.deployment_id)
        if d.deployment_id == "a":
            raise GatewayError(Reason.UPSTREAM_UNAVAILABLE, "down")
        return d.deployment_id

    rec = CallRecord("req_x", num_retries=1)
    got = await r.first_success("m", a_fails, rec)
    # "a" first (a new router's rotation starts there), retried twice on its own, then the
    # router's one retry goes to "b".
    assert tried == ["a", "a", "a", "b"] and got == "b" and rec.attempts == 4
    rec0 = CallRecord("req_y", num_retries=0)
    tried.clear()
    with pytest.raises(GatewayError):
        while True:  # until round-robin hands "a" the first try: no retry elsewhere then
            await r.first_success("m", a_fails, rec0)
            tried.clear()
    assert tried == ["a", "a", "a"]


async def test_a_follow_up_prefers_the_deployment_holding_the_conversation(tmp_path: Path) -> None:
    r = router(tmp_path, [deployment("a"), deployment("b"), deployment("c")])
    rec = CallRecord("req_p")
    rec.prefer = lambda d: d.deployment_id == "c"
    assert {await r.first_success("m", served, rec) for _ in range(20)} == {"c"}
