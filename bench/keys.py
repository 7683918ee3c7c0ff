"""What a virtual key with limits and cost tracking adds per request, measured in process (CPU time).

One request's worth of the platform's work: the `authorization` header resolved to a key (sha256 and
the local cache), the gate's admission with an rpm, a tpm and a budget limit on (the one-process
counters of a SQLite store: in memory, flushed in batches off the request path), the x-ratelimit
headers, and the spend hook when the response ends (tokens, budget, lifetime spend, the spend row).
Measured beside the same loop with the master key, which only records spend.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from responses_gateway.auth import Authenticator
from responses_gateway.platform.gate import Gate
from responses_gateway.platform.keys import KeyAdmin
from responses_gateway.store.sqlite import SqliteStore
from responses_gateway.store.sqlite_keys import SqliteKeys
from responses_gateway.telemetry.record import CallRecord
from responses_gateway.v1 import request_pb2

TARGET_MS = 0.05
MASTER = "sk-bench-master-0123456789"


async def _per_request(n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(str(Path(tmp) / "bench.db"))
        await store.open()
        try:
            keys = SqliteKeys(store)
            gate = Gate(keys, shared=False, cache_seconds=3600)
            auth = Authenticator(MASTER, gate.resolve)
            made = await KeyAdmin(keys, gate).generate(
                {"rpm_limit": 10**9, "tpm_limit": 10**12, "max_budget": 10**9, "budget_duration": "30d"}
            )
            request = request_pb2.CreateResponseRequest(model="m", user="end-user-1")
            results = []
            for header in (f"Bearer {made['key']}", f"Bearer {MASTER}"):
                for warm in (True, False):
                    started = time.process_time()
                    for _ in range(500 if warm else n):
                        record = CallRecord("req_1", model="m")
                        principal = await auth.authenticate(header)
                        await gate.admit_create(principal, request, record)
                        # What the router and accounting set before the response ends.
                        record.deployment, record.served_model = "m-1", "m"
                        record.input_tokens, record.output_tokens, record.cost = 1200, 300, 0.0042
                        record.end()
                    elapsed = time.process_time() - started
                results.append(elapsed / n * 1000)
            await gate.stop()
        finally:
            await store.close()
    return results[0], results[1]


def measure(n: int = 20_000) -> tuple[float, float]:
    """Milliseconds of CPU per request: (virtual key with limits, master key)."""
    return asyncio.run(_per_request(n))


def report() -> str:
    virtual, master = measure()
    verdict = "ok" if virtual <= TARGET_MS else "OVER TARGET"
    return (
        "virtual key + rpm/tpm/budget limits + spend per request (auth, admission, x-ratelimit headers, "
        f"spend hook): {virtual * 1000:.1f} µs CPU (master key: {master * 1000:.1f} µs; "
        f"target ≤ {TARGET_MS * 1000:.0f} µs: {verdict})"
    )


if __name__ == "__main__":
    print(report())
