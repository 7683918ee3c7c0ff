"""The router on its own: which deployments it tries, in which order, and when it stops trying.

Deployments here never call anything: each attempt is a function of the deployment it is handed, so a
test scripts which deployments fail and how, and reads back the order they were tried in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from responses_gateway.config import load_config
from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.registry import ProviderRegistry
from responses_gateway.routing.router import Router


def deployment(name: str, ident: str) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {"model": "openai/x", "mock_response": "ok"},
        "model_info": {"id": ident},
    }


def router(tmp_path: Path, models: list[dict[str, Any]], **settings: Any) -> Router:
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps({"model_list": models, "router_settings": settings}))
    return Router(load_config(path, environ={}), ProviderRegistry())


class Script:
    """Fails the deployments named in `failing` (with `reason`), succeeds elsewhere; records the order."""

    def __init__(self, failing: dict[str, Reason] | Callable[[str, int], Reason | None]) -> None:
        self.failing = failing
        self.tried: list[str] = []

    async def __call__(self, d: ResolvedDeployment, provider: object) -> str:
        self.tried.append(d.deployment_id)
        if callable(self.failing):
            reason = self.failing(d.deployment_id, len(self.tried))
        else:
            reason = self.failing.get(d.deployment_id)
        if reason is not None:
            raise GatewayError(reason, f"{d.deployment_id} failed")
        return d.deployment_id


async def test_a_retryable_failure_moves_on_to_another_deployment(tmp_path: Path) -> None:
    r = router(tmp_path, [deployment("m", "a"), deployment("m", "b")], num_retries=1)
    for first in ("a", "b"):
        script = Script({first: Reason.UPSTREAM_UNAVAILABLE})
        other = "b" if first == "a" else "a"
        # Whatever order the shuffle picks, a failure on one deployment is retried on the other.
        for _ in range(20):
            script.tried.clear()
            assert await r.first_success("m", script) == other
            assert script.tried in ([other], [first, other])
            r._states.clear()


async def test_round_robin_spreads_and_retries_in_order(tmp_path: Path) -> None:
    r = router(
        tmp_path,
        [deployment("m", "a"), deployment("m", "b"), deployment("m", "c")],
        routing_strategy="round-robin",
        num_retries=2,
    )
    firsts = []
    for _ in range(6):
        script = Script({})
        firsts.append(await r.first_success("m", script))
    assert sorted(firsts) == ["a", "a", "b", "b", "c", "c"]
    script = Script({"a": Reason.RATE_LIMITED, "b": Reason.UPSTREAM_TIMEOUT, "c": Reason.UPSTREAM_ERROR})
    with pytest.raises(GatewayError) as caught:
        await r.first_success("m", script)
    assert sorted(script.tried) == ["a", "b", "c"]  # 1 + num_retries attempts, each on another deployment
    assert caught.value.message == f"{script.tried[-1]} failed"  # the last failure is what the client gets


async def test_a_client_error_is_not_retried(tmp_path: Path) -> None:
    r = router(tmp_path, [deployment("m", "a"), deployment("m", "b")], num_retries=3)
    for reason in (Reason.INVALID_REQUEST, Reason.UNAUTHENTICATED, Reason.UNSUPPORTED_PARAMETER):
        script = Script(lambda ident, n, reason=reason: reason)
        with pytest.raises(GatewayError) as caught:
            await r.first_success("m", script)
        assert caught.value.reason == reason and len(script.tried) == 1


async def test_fallbacks_are_tried_in_order_after_the_model_is_exhausted(tmp_path: Path) -> None:
    r = router(
        tmp_path,
        [deployment("primary", "p"), deployment("second", "s"), deployment("third", "t")],
        num_retries=1,
        fallbacks=[{"primary": ["second", "third"]}],
    )
    script = Script({"p": Reason.UPSTREAM_UNAVAILABLE, "s": Reason.UPSTREAM_UNAVAILABLE})
    assert await r.first_success("primary", script) == "t"
    assert script.tried == ["p", "p", "s", "s", "t"]
    # A model without fallbacks configured does not borrow another's.
    with pytest.raises(GatewayError):
        await r.first_success("second", Script({"s": Reason.UPSTREAM_UNAVAILABLE}))


async def test_a_deployment_cools_down_after_allowed_fails_and_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import responses_gateway.routing.router as router_module

    now = [1000.0]
    monkeypatch.setattr(router_module.time, "monotonic", lambda: now[0])
    r = router(
        tmp_path,
        [deployment("m", "a"), deployment("m", "b")],
        routing_strategy="round-robin",
        num_retries=1,
        allowed_fails=2,
        cooldown_time=30,
    )
    broken = Script({"a": Reason.UPSTREAM_UNAVAILABLE})
    while broken.tried.count("a") < 2:  # round-robin hands "a" the first try every other call
        assert await r.first_success("m", broken) == "b"
    # Cooled down: "a" is not tried at all, whatever the rotation says.
    for _ in range(4):
        script = Script({})
        assert await r.first_success("m", script) == "b" and script.tried == ["b"]
    now[0] += 31
    seen = set()
    for _ in range(4):
        seen.add(await r.first_success("m", Script({})))
    assert seen == {"a", "b"}  # back in rotation once cooldown_time has passed


async def test_all_deployments_cooling_down_still_serve(tmp_path: Path) -> None:
    """Cooling every deployment down must not turn a model off: the cooled ones are tried anyway."""
    r = router(tmp_path, [deployment("m", "a")], allowed_fails=1, cooldown_time=600)
    with pytest.raises(GatewayError):
        await r.first_success("m", Script({"a": Reason.UPSTREAM_UNAVAILABLE}))
    assert await r.first_success("m", Script({})) == "a"


async def test_retry_after_from_the_upstream_is_honoured_when_retrying_the_same_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import responses_gateway.routing.router as router_module

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(router_module, "backoff_sleep", sleep)
    r = router(tmp_path, [deployment("m", "a")], num_retries=2)

    async def limited(d: ResolvedDeployment, provider: object) -> str:
        if len(slept) < 2:
            raise GatewayError(Reason.RATE_LIMITED, "slow down", retry_after=2.5 if not slept else 60)
        return "ok"

    assert await r.first_success("m", limited) == "ok"
    assert slept == [2.5, 5.0]  # the upstream's Retry-After, capped at 5 s


async def test_unknown_and_disabled_models(tmp_path: Path) -> None:
    models = [
        deployment("m", "a"),
        {"model_name": "keyless", "litellm_params": {"model": "openai/x", "api_key": "os.environ/NOPE"}},
    ]
    r = router(tmp_path, models)
    with pytest.raises(GatewayError) as caught:
        await r.first_success("nope", Script({}))
    assert caught.value.reason == Reason.MODEL_NOT_FOUND
    with pytest.raises(GatewayError) as caught:
        await r.first_success("keyless", Script({}))
    assert caught.value.reason == Reason.PROVIDER_NOT_CONFIGURED and "NOPE" in caught.value.message
