"""How fast this machine is right now: a fixed piece of work timed in CPU, printed beside the figures.

On a shared virtual machine the same code measures up to a third slower from one hour to the next
(another tenant on the host, the vCPU's placement), so a figure means little without the speed it
was taken at. The workload is the kind the gateway does, in the same interpreter: Python loops and
dicts, protobuf messages, orjson. Lower is faster; divide two runs' figures by their references to
compare them.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from responses_gateway.v1 import response_pb2

_DOC = {"id": "resp_1", "status": "completed", "output": [{"type": "message", "content": ["x" * 40] * 4}] * 3}


def _unit() -> None:
    total = 0
    for i in range(200):
        d: dict[str, Any] = {"k": i, "v": str(i)}
        total += len(d["v"]) + d["k"] % 7
    r = response_pb2.Response(id="resp_1", model="m")
    r.usage.input_tokens = total
    orjson.loads(orjson.dumps(_DOC))
    r.SerializeToString()


def measure(units: int = 4000) -> float:
    """Median µs of CPU per unit of the workload, over 5 rounds."""
    for _ in range(units // 10):
        _unit()
    rounds = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(units):
            _unit()
        rounds.append((time.process_time() - started) / units * 1e6)
    return sorted(rounds)[2]


def report() -> str:
    return f"machine speed now: the reference workload takes {measure():.1f} µs of CPU (bench/reference.py; lower is faster)"


if __name__ == "__main__":
    print(report())
