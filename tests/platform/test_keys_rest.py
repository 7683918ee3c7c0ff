"""Virtual keys over the admin REST API and in use: the master key only, hashed, limits (rpm, tpm,
budget) answered with 429 and OpenAI's headers, expired / revoked keys 401, a key sees only its own
responses, and the spend report adds up to the costs of the responses made."""

from __future__ import annotations

import hashlib
import time
import uuid

import httpx
import openai
import pytest

from tests.platform.conftest import MASTER, admin, auth, create, new_key
from tests.support.process import GatewayProcess


def test_the_admin_api_wants_the_master_key(gateway: GatewayProcess) -> None:
    assert admin(gateway, "GET", "/key/list", key="").status_code == 401
    assert admin(gateway, "GET", "/key/list", key="sk-wrong-key-123").status_code == 401
    virtual = new_key(gateway)["key"]
    for method, path, body in [
        ("POST", "/key/generate", {}),
        ("GET", "/key/list", None),
        ("POST", "/key/update", {"key": virtual, "rpm_limit": 1000}),
        ("POST", "/key/delete", {"keys": [virtual]}),
        ("GET", "/global/spend/report", None),
    ]:
        r = admin(gateway, method, path, key=virtual, json=body)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["code"] == "permission_denied"
    # A key may read its own info, not another's.
    mine = admin(gateway, "GET", "/key/info", key=virtual)
    assert (
        mine.status_code == 200
        and mine.json()["info"]["token"] == hashlib.sha256(virtual.encode()).hexdigest()
    )
    other = new_key(gateway)["key"]
    assert admin(gateway, "GET", "/key/info", key=virtual, params={"key": other}).status_code == 403


def test_generate_info_update_list_delete(gateway: GatewayProcess) -> None:
    alias = f"svc-{uuid.uuid4().hex[:8]}"
    team = f"team-{uuid.uuid4().hex[:8]}"
    made = new_key(
        gateway,
        key_alias=alias,
        models=["m1"],
        rpm_limit=100,
        tpm_limit=100000,
        max_budget=10.0,
        budget_duration="30d",
        user_id="u-1",
        team_id=team,
        metadata={"env": "test"},
        duration="1h",
    )
    key = made["key"]
    token = hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith("sk-") and made["token"] == token and made["key_name"] == f"sk-...{key[-4:]}"
    assert made["expires"] is not None and made["budget_reset_at"] is not None and made["spend"] == 0
    # The key works, and only for its models.
    assert create(gateway, key).status_code == 200
    denied = create(gateway, key, model="m2")
    assert denied.status_code == 403 and denied.json()["error"]["param"] == "model"

    info = admin(gateway, "GET", "/key/info", params={"key": key}).json()
    assert info["key"] == key
    assert {k: info["info"][k] for k in ("key_alias", "models", "rpm_limit", "team_id", "metadata")} == {
        "key_alias": alias,
        "models": ["m1"],
        "rpm_limit": 100,
        "team_id": team,
        "metadata": {"env": "test"},
    }
    by_token = admin(gateway, "GET", "/key/info", params={"key": token}).json()
    assert by_token["info"]["token"] == token and "key" not in by_token["info"]

    updated = admin(gateway, "POST", "/key/update", json={"key": key, "models": ["m1", "m2"], "rpm_limit": 5})
    assert updated.status_code == 200, updated.text
    assert updated.json()["models"] == ["m1", "m2"] and updated.json()["key_alias"] == alias
    assert create(gateway, key, model="m2").status_code == 200  # at once on this replica

    listed = admin(gateway, "GET", "/key/list", params={"team_id": team}).json()
    assert listed["keys"] == [token] and listed["total_count"] == 1
    full = admin(gateway, "GET", "/key/list", params={"team_id": team, "return_full_object": "true"}).json()
    assert full["keys"][0]["rpm_limit"] == 5

    gone = admin(gateway, "POST", "/key/delete", json={"key_aliases": [alias]})
    assert gone.status_code == 200 and gone.json() == {"deleted_keys": [alias]}
    revoked = create(gateway, key)
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "invalid_api_key"
    assert admin(gateway, "GET", "/key/info", params={"key": key}).status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"rpm_limit": -1}, "rpm_limit"),
        ({"budget_duration": "soon"}, "budget_duration"),
        ({"duration": "10 years"}, "duration"),
        ({"max_budget": "lots"}, "max_budget"),
        ({"soft_budget": 1}, "soft_budget"),
        ({"models": "m1"}, "models"),
    ],
)
def test_bad_key_settings_are_a_400(gateway: GatewayProcess, body: dict[str, object], param: str) -> None:
    r = admin(gateway, "POST", "/key/generate", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and r.json()["error"]["type"] == "invalid_request_error"


def test_a_taken_alias_is_a_409(gateway: GatewayProcess) -> None:
    alias = f"dup-{uuid.uuid4().hex[:8]}"
    new_key(gateway, key_alias=alias)
    r = admin(gateway, "POST", "/key/generate", json={"key_alias": alias})
    assert r.status_code == 409 and r.json()["error"]["param"] == "key_alias"


def test_an_expired_key_is_a_401(gateway: GatewayProcess) -> None:
    key = new_key(gateway, duration="1s")["key"]
    assert create(gateway, key).status_code == 200
    time.sleep(1.2)
    r = create(gateway, key)
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def test_a_blocked_key_is_a_401_until_unblocked(gateway: GatewayProcess) -> None:
    key = new_key(gateway)["key"]
    assert admin(gateway, "POST", "/key/update", json={"key": key, "blocked": True}).status_code == 200
    assert create(gateway, key).status_code == 401
    assert admin(gateway, "POST", "/key/update", json={"key": key, "blocked": False}).status_code == 200
    assert create(gateway, key).status_code == 200


def test_over_rpm_is_a_429_with_openai_headers(gateway: GatewayProcess) -> None:
    key = new_key(gateway, rpm_limit=2)["key"]
    # Requests in one minute window: wait for a fresh one if this one is about to end.
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)
    first = create(gateway, key)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert create(gateway, key).headers["x-ratelimit-remaining-requests"] == "0"
    r = create(gateway, key)
    assert r.status_code == 429, r.text
    assert (
        r.json()["error"]["type"] == "rate_limit_error" and r.json()["error"]["code"] == "rate_limit_exceeded"
    )
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert (
        r.headers["x-ratelimit-limit-requests"] == "2" and r.headers["x-ratelimit-remaining-requests"] == "0"
    )
    assert r.headers["x-ratelimit-reset-requests"].endswith("s")
    # Another key is not limited by it, nor is the master key.
    assert create(gateway, new_key(gateway, rpm_limit=2)["key"]).status_code == 200
    assert create(gateway, MASTER).status_code == 200


def test_over_tpm_is_a_429(gateway: GatewayProcess) -> None:
    key = new_key(gateway, tpm_limit=5)["key"]
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)
    first = create(gateway, key)
    assert first.status_code == 200
    used = first.json()["usage"]["total_tokens"]
    assert used >= 5  # the fake's answer alone passes the limit
    r = create(gateway, key)
    assert r.status_code == 429, r.text
    assert r.headers["x-ratelimit-limit-tokens"] == "5" and r.headers["x-ratelimit-remaining-tokens"] == "0"
    assert "tokens per minute" in r.json()["error"]["message"]


def test_past_its_budget_a_key_gets_insufficient_quota(gateway: GatewayProcess) -> None:
    key = new_key(gateway, max_budget=1e-9)["key"]
    first = create(gateway, key)
    assert first.status_code == 200 and first.json()["usage"]["cost"] > 1e-9
    r = create(gateway, key)
    assert r.status_code == 429, r.text
    assert (
        r.json()["error"]["type"] == "insufficient_quota"
        and r.json()["error"]["code"] == "insufficient_quota"
    )
    assert "retry-after" not in r.headers
    info = admin(gateway, "GET", "/key/info", params={"key": key}).json()["info"]
    assert info["spend"] == pytest.approx(first.json()["usage"]["cost"], rel=1e-9)
    # Raising the budget lets it through again.
    assert admin(gateway, "POST", "/key/update", json={"key": key, "max_budget": 100.0}).status_code == 200
    assert create(gateway, key).status_code == 200


def test_a_key_sees_only_its_own_responses(gateway: GatewayProcess) -> None:
    a, b = new_key(gateway)["key"], new_key(gateway)["key"]
    made = create(gateway, a, background=True)
    assert made.status_code == 200, made.text
    rid = made.json()["id"]
    base = f"{gateway.http_base}/v1/responses/{rid}"
    for method, url in [
        ("GET", base),
        ("GET", f"{base}?stream=true"),
        ("GET", f"{base}/input_items"),
        ("POST", f"{base}/cancel"),
        ("DELETE", base),
    ]:
        r = httpx.request(method, url, headers=auth(b), timeout=30)
        assert r.status_code == 404, (method, url, r.text)
        assert rid in r.json()["error"]["message"]
    follow = create(gateway, b, previous_response_id=rid)
    assert follow.status_code == 400 and follow.json()["error"]["code"] == "previous_response_not_found"
    # Its own key and the master key see it; it continues for its own key.
    for key in (a, MASTER):
        assert httpx.get(base, headers=auth(key), timeout=30).status_code == 200
        assert httpx.get(f"{base}/input_items", headers=auth(key), timeout=30).status_code == 200
    deadline = time.monotonic() + 10
    while httpx.get(base, headers=auth(a), timeout=30).json()["status"] in ("queued", "in_progress"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert create(gateway, a, previous_response_id=rid).status_code == 200
    # The master key's responses are not a virtual key's either.
    master_made = create(gateway, MASTER).json()["id"]
    assert httpx.get(f"{gateway.http_base}/v1/responses/{master_made}", headers=auth(a)).status_code == 404
    assert httpx.delete(base, headers=auth(a), timeout=30).status_code == 200


def test_the_chat_bridge_goes_through_the_same_gate(gateway: GatewayProcess) -> None:
    key = new_key(gateway, models=["m1"], rpm_limit=1)["key"]
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)
    url = f"{gateway.http_base}/v1/chat/completions"
    body = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(url, json={**body, "model": "m2"}, headers=auth(key), timeout=30).status_code == 403
    assert httpx.post(url, json=body, headers=auth(key), timeout=30).status_code == 200
    assert httpx.post(url, json=body, headers=auth(key), timeout=30).status_code == 429


def test_the_spend_report_adds_up_the_costs(gateway: GatewayProcess) -> None:
    team = f"team-{uuid.uuid4().hex[:8]}"
    one, two = new_key(gateway, team_id=team)["key"], new_key(gateway, team_id=team)["key"]
    costs: dict[str, float] = {}
    by_model: dict[str, float] = {}
    user = f"end-user-{uuid.uuid4().hex[:6]}"
    for key, model, extra in [
        (one, "m1", {}),
        (one, "m2", {"user": user}),
        (two, "m1", {"safety_identifier": user}),
    ]:
        r = create(gateway, key, model=model, **extra)
        assert r.status_code == 200
        cost = r.json()["usage"]["cost"]
        costs[key] = costs.get(key, 0.0) + cost
        by_model[model] = by_model.get(model, 0.0) + cost
    for key in (one, two):
        info = admin(gateway, "GET", "/key/info", params={"key": key}).json()["info"]
        assert info["spend"] == pytest.approx(costs[key], rel=1e-9)
        report = admin(
            gateway, "GET", "/global/spend/report", params={"group_by": "model", "key": key}
        ).json()
        assert report["total_spend"] == pytest.approx(costs[key], rel=1e-9)
    teams = admin(gateway, "GET", "/global/spend/report", params={"group_by": "team"}).json()
    ours = next(d for d in teams["data"] if d["group"] == team)
    assert ours["spend"] == pytest.approx(sum(costs.values()), rel=1e-9) and ours["requests"] == 3
    users = admin(gateway, "GET", "/spend/report", params={"group_by": "user"}).json()
    assert next(d for d in users["data"] if d["group"] == user)["requests"] == 2
    keys = admin(gateway, "GET", "/global/spend/report", params={"group_by": "api_key"}).json()
    token = hashlib.sha256(one.encode()).hexdigest()
    assert next(d for d in keys["data"] if d["group"] == token)["spend"] == pytest.approx(
        costs[one], rel=1e-9
    )
    days = admin(gateway, "GET", "/global/spend/report", params={"group_by": "day"}).json()
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert days["data"][-1]["group"] == today and days["total_spend"] >= sum(costs.values())
    bad = admin(gateway, "GET", "/global/spend/report", params={"group_by": "planet"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"
    bad = admin(gateway, "GET", "/global/spend/report", params={"start_date": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "start_date"


def test_the_openai_sdk_with_a_virtual_key(gateway: GatewayProcess) -> None:
    key = new_key(gateway, rpm_limit=1)["key"]
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)
    client = openai.OpenAI(base_url=f"{gateway.http_base}/v1", api_key=key, max_retries=0)
    response = client.responses.create(model="m1", input="hi")
    assert response.output_text and response.usage is not None
    assert getattr(response.usage, "cost", None) == pytest.approx(response.usage.model_extra["cost"])
    assert client.responses.retrieve(response.id).id == response.id
    with pytest.raises(openai.RateLimitError) as limited:
        client.responses.create(model="m1", input="hi")
    assert limited.value.response.headers["retry-after"]
    other = openai.OpenAI(base_url=f"{gateway.http_base}/v1", api_key=new_key(gateway)["key"], max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(response.id)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=f"{gateway.http_base}/v1", api_key="sk-nobody-0000", max_retries=0
        ).responses.create(model="m1", input="hi")
