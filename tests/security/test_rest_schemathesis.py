"""Schemathesis over OpenAI's own OpenAPI spec against the real REST shim (loopback, in-process gateway).

Every operation of the spec, with data that fits the schemas (positive) and data that breaks them
(negative), a fixed seed and a bounded number of examples. Whatever a client sends, the gateway answers
with no 5xx, and every 4xx carries OpenAI's error JSON. A response the gateway accepted must also read
back (GET, input items) without a 5xx: nothing accepted may be unreadable later.

Problems are collected over the whole run (no shrinking: the budget goes to new inputs) and reported
together, grouped by operation and answer, with one request of each group to reproduce it.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.security.conftest import AUTH, FUZZ_SCALE, MODELS, Env, check_rest, rest_problem
from tests.spec import spec_path

SCHEMA = schemathesis.openapi.from_path(spec_path())
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}


# Examples per (operation, mode): most for create, whose body is the largest surface; the whole file
# stays near a minute on 2 cores.
def examples(label: str, mode: GenerationMode) -> int:
    if label == "POST /responses":
        return 100 if mode is GenerationMode.POSITIVE else 40
    return 30 if "{response_id}" not in label else 20


def _negatable(label: str) -> bool:
    """An operation whose only input is a path string has no negative data to generate."""
    op = OPERATIONS[label]
    params = [p for p in op.iter_parameters() if p.location != "path"]
    return bool(params) or (op.body is not None and len(op.body) > 0)


CASES = [
    pytest.param(label, mode, id=f"{label}-{mode.value}")
    for label in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or _negatable(label)
]


def _with_model(case: Any, model: str | None) -> Any:
    """Point most generated bodies at a configured deployment: the spec leaves `model` optional, and a
    body without one stops at "missing model" before reaching any provider."""
    if model is not None and isinstance(case.body, dict):
        case.body["model"] = model
    return case


def _repro(request: requests.PreparedRequest) -> str:
    body = request.body or b""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    return f"{request.method} {str(request.url)[:300]} {text[:700]}"


def _group_key(label: str, status: int, text: str) -> str:
    # The first words of the message identify the cause; ids and values after them vary per input.
    return f"{label} -> {status}: {text[:120]}"


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_no_5xx_and_openai_errors(env: Env, label: str, mode: GenerationMode) -> None:
    op = OPERATIONS[label]
    problems: dict[str, list[str]] = defaultdict(list)
    statuses: Counter[int] = Counter()
    session = requests.Session()
    follow = httpx.Client(base_url=env.rest_base, headers=AUTH, timeout=30)
    sent = 0

    def note(where: str, status: int, content_type: str, text: str, repro: str) -> bool:
        problem = rest_problem(status, content_type, text)
        if problem is not None:
            problems[_group_key(where, status, text)].append(repro)
        return problem is None

    # Negative bodies keep their own (often wrong) `model`; positive ones go to a deployment.
    models = st.sampled_from(MODELS) if mode is GenerationMode.POSITIVE else st.none()

    @seed(20261201)
    @settings(
        max_examples=examples(label, mode) * FUZZ_SCALE,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.builds(_with_model, op.as_strategy(generation_mode=mode), models))
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        r = case.call(base_url=env.rest_base, session=session, headers=AUTH, timeout=30)
        repro = _repro(r.request)
        statuses[r.status_code] += 1
        if os.environ.get("FUZZ_STATS") and r.status_code == 400:
            print("   ", r.text[:160])
        content_type = (r.headers.get("content-type") or [""])[0]  # schemathesis keeps every value
        ok = note(label, r.status_code, content_type, r.text, repro)
        if not ok or r.status_code != 200 or op.method.upper() != "POST" or op.path != "/responses":
            return
        body = r.json() if content_type.startswith("application/json") else {}
        rid = body.get("id") if isinstance(body, dict) else None
        if isinstance(rid, str) and rid.startswith("resp_"):
            for path in (f"/responses/{rid}", f"/responses/{rid}/input_items"):
                again = follow.get(path)
                content_type = again.headers.get("content-type", "")
                note(f"GET {path} after {label}", again.status_code, content_type, again.text, repro)

    try:
        run()
    finally:
        session.close()
        follow.close()
    assert sent > 0
    if os.environ.get("FUZZ_STATS"):
        print(f"\n{label} {mode.value}: {sorted(statuses.items())}")
    report = [f"{key}  ({len(repros)}x)\n    {repros[0]}" for key, repros in sorted(problems.items())]
    assert not problems, f"{len(report)} kinds of wrong answer in {sent} requests:\n" + "\n".join(report)


def test_the_checker_catches_what_it_must() -> None:
    """The verdict itself: a 5xx, a bare 4xx, a non-JSON 4xx are all flagged; OpenAI's shape is not."""
    good = '{"error": {"message": "m", "type": "invalid_request_error", "param": null, "code": null}}'
    assert rest_problem(400, "application/json", good) is None
    assert rest_problem(500, "application/json", good) is not None
    assert rest_problem(404, "text/plain", "Not Found") is not None
    assert rest_problem(400, "application/json", '{"detail": "x"}') is not None
    assert rest_problem(200, "text/event-stream", "data: The gateway failed unexpectedly (X).") is not None
    response = httpx.Response(502, request=httpx.Request("GET", "http://x/"), text=good)
    with pytest.raises(AssertionError):
        check_rest(response)
