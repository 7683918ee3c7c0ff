"""The garbage collector's settings in a serving gateway (`gc_policy.py`): once `serve` serves, start-up's
objects are frozen and generation 0 waits for GEN0_THRESHOLD allocations; after a config reload retires
the old generation, what it held in reference cycles is collected (frozen objects never would be).

Each case runs in a fresh interpreter: freezing the test process's own objects would change every test
after it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.process import REPO

# Serves through `serve_until_signalled` (the CLI's path) with real listeners, answers one request,
# reports the collector's state, reloads the config, waits for the old generation to retire, reports
# whether a cycle hung on the old router is gone, then stops itself with SIGTERM.
_PROBE = """
import asyncio, gc, json, os, signal, sys, urllib.request, weakref
from responses_gateway import gc_policy
from responses_gateway.app import Gateway, Listen
from responses_gateway.config import load_config

async def main(path):
    gw = Gateway(load_config(path), Listen("127.0.0.1", 0, 0, grace_seconds=1))
    serving = asyncio.create_task(gw.serve_until_signalled())
    while gc.get_freeze_count() == 0:
        assert not serving.done(), serving
        await asyncio.sleep(0.01)
    body = json.dumps({"model": "m", "input": "hi", "mock_response": "hello"}).encode()
    def post():
        r = urllib.request.Request(
            f"http://127.0.0.1:{gw.http_port}/v1/responses", body, {"content-type": "application/json"}
        )
        return json.load(urllib.request.urlopen(r, timeout=30))
    answer = await asyncio.to_thread(post)
    report = {"status": answer["status"], "threshold": gc.get_threshold()[0],
              "frozen": gc.get_freeze_count()}
    old = gw.reloader.current.router
    old.probe_cycle = [old]  # the old generation now sits in a cycle, frozen since start-up
    gone = weakref.ref(old)
    del old
    reloaded = await gw.reload("test")
    report["reload"] = reloaded.applied
    for _ in range(300):
        await asyncio.sleep(0.02)
        if gone() is None:
            break
    report["old_router_collected"] = gone() is None
    os.kill(os.getpid(), signal.SIGTERM)
    await serving
    print(json.dumps(report))

asyncio.run(main(sys.argv[1]))
"""

_SETTLE_ONLY = """
import gc, json, weakref
from responses_gateway import gc_policy

class Node:
    pass

before = gc.get_threshold()
gc_policy.refreeze()  # not settled: nothing happens
unsettled = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()[0] == before[0]}
a = Node(); a.self = a
kept = weakref.ref(a)
gc_policy.settle()
del a
gc.collect()
frozen_survives = kept() is not None
gc_policy.refreeze()
print(json.dumps({"unsettled": unsettled, "threshold": gc.get_threshold()[0],
                  "frozen_survives": frozen_survives, "collected_after_refreeze": kept() is None}))
"""


def _run(*args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_settle_freezes_and_raises_the_threshold_refreeze_collects_what_was_frozen() -> None:
    from responses_gateway.gc_policy import GEN0_THRESHOLD

    report = _run(_SETTLE_ONLY)
    assert report["unsettled"] == {"frozen": 0, "threshold": True}
    assert report["threshold"] == GEN0_THRESHOLD
    assert report["frozen_survives"] is True  # why a reload needs refreeze at all
    assert report["collected_after_refreeze"] is True


def test_a_serving_gateway_is_settled_and_a_reload_frees_the_old_generation(tmp_path: Path) -> None:
    from responses_gateway.gc_policy import GEN0_THRESHOLD

    config = {
        "model_list": [
            {
                "model_name": "m",
                "litellm_params": {
                    "model": "openai/gpt-4.1",
                    "api_base": "http://127.0.0.1:9/v1",
                    "api_key": "k",
                },
            }
        ],
        "gateway_settings": {
            "store": {"path": str(tmp_path / "r.db")},
            "native_lookup_timeout_seconds": 0.05,
        },
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    report = _run(_PROBE, str(path))
    assert report["status"] == "completed"
    assert report["threshold"] == GEN0_THRESHOLD
    assert isinstance(report["frozen"], int) and report["frozen"] > 10_000  # start-up's objects
    assert report["reload"] is True
    assert report["old_router_collected"] is True
