"""What the bench's tests share: one real gateway (`serve`, one worker) in front of the real fast
upstream, for the load generators to drive."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from bench import procs
from tests.support.process import GatewayProcess

MODEL = "bench-gpt"


@pytest.fixture(scope="package")
def bench_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("gateway")
    upstream = procs.start_upstream(None, 5, workdir)
    try:
        config = procs.write_config(workdir, upstream.ports[0], MODEL)
        gateway = GatewayProcess(config, cwd=workdir, grace=1).start()
        try:
            yield gateway
        finally:
            gateway.stop()
    finally:
        procs.stop(upstream)


def run_generator(argv: list[str]) -> dict[str, Any]:
    """A Go load generator's run: it exits 0, cues the timed phase on stderr and prints one JSON line."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "timed phase starts" in done.stderr  # the bench's cue to read the gateway's CPU
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout  # one JSON line, nothing else on stdout
    result: dict[str, Any] = json.loads(lines[0])
    return result


def free_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
