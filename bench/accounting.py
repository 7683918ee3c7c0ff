"""What cost tracking and telemetry add per request, measured in process (CPU time, no I/O).

One request's worth of the work they do: the call's record, the routing hints and the router's
bookkeeping around one attempt (in flight, rpm window, latency), the outbound headers, the cost from the
price book, the `usage.cost` field, the metrics (once per response) and the JSON request log line (to
/dev/null). The attempt itself does nothing, so what is timed is that work alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from responses_gateway.config import load_config
from responses_gateway.domain import accounting
from responses_gateway.domain.context import CallContext
from responses_gateway.domain.plan import Plan
from responses_gateway.providers.registry import ProviderRegistry
from responses_gateway.routing.router import Router
from responses_gateway.telemetry import requestlog
from responses_gateway.telemetry.record import outbound_headers
from responses_gateway.v1 import request_pb2, response_pb2

TARGET_MS = 0.05


def _router(tmp: Path) -> Router:
    path = tmp / "gateway.json"
    path.write_text(
        json.dumps(
            {
                "model_list": [
                    {
                        "model_name": "m",
                        "litellm_params": {
                            "model": "openai/gpt-4.1",
                            "api_key": "k",
                            "api_base": "http://x/v1",
                        },
                    }
                ]
            }
        )
    )
    return Router(load_config(path, environ={}), ProviderRegistry())


def _response() -> response_pb2.Response:
    r = response_pb2.Response(
        id="resp_1", model="gpt-4.1-2025-04-14", status=response_pb2.RESPONSE_STATUS_COMPLETED
    )
    r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens = 1200, 300, 1500
    r.usage.input_tokens_details.cached_tokens = 200
    return r


async def _per_request(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        router = _router(Path(tmp))
    request = request_pb2.CreateResponseRequest(model="m")
    deployment = router.config.deployments[0]

    async def attempt(d: object, _: object) -> None:
        outbound_headers()  # what the upstream HTTP client adds to each request

    for warm in (True, False):
        started = time.process_time()
        for _ in range(200 if warm else n):
            plan = Plan(request, CallContext(), [], None, store=False, log_events=False, mode="unary")
            accounting.begin(plan)
            await router.first_success("m", attempt, plan.ctx.record)
            response = _response()
            accounting.settle(plan, deployment, response, None, router.prices)
            accounting.observe(plan, response)
            plan.ctx.headers()
        elapsed = time.process_time() - started
    return elapsed / n * 1000


def measure(n: int = 20_000) -> float:
    """Milliseconds of CPU per request, with the request log on (written to /dev/null).

    The handler `configure` installs is kept and only its stream changed: another handler would send
    each line down `logging`'s record path, which the gateway's own handler skips."""
    requestlog.configure(True)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
    handler = requestlog.log.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(devnull)
    try:
        return asyncio.run(_per_request(n))
    finally:
        requestlog.configure(False)
        devnull.close()


def report() -> str:
    ms = measure()
    verdict = "ok" if ms <= TARGET_MS else "OVER TARGET"
    return (
        f"cost tracking + telemetry per request (router bookkeeping, cost, metrics, request log line): "
        f"{ms * 1000:.1f} µs CPU (target ≤ {TARGET_MS * 1000:.0f} µs: {verdict})"
    )


if __name__ == "__main__":
    print(report())
