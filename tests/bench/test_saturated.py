"""bench/saturated: its lines, from a short real run (both Go generators built, a one-worker gateway on
loopback in front of the fast upstream), with every figure parsed and positive; and the one line it
returns without Go. The figures' values are printed by `make bench`, never asserted."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import procs, saturated

MODEL = "bench-gpt"
NUMBER = r"([\d,]+(?:\.\d+)?)"
SATURATED = re.compile(
    rf"^  (REST|gRPC) unary, saturated \(c=4, Go load generator\): {NUMBER} rps, gateway CPU {NUMBER} "
    rf"µs/request \(target <= (\d+)\), gateway busy {NUMBER} cores.*, load generator {NUMBER} µs/request$"
)
IDLE = re.compile(
    rf"^  (REST|gRPC) unary, c=1 \(for reference\): gateway CPU {NUMBER} µs/request, p50 {NUMBER} ms, "
    rf"\+(-?{NUMBER[1:-1]}) ms over the direct REST call \(p50 {NUMBER} ms\)$"
)

FLOOR = re.compile(
    rf"^  gRPC floor, saturated \(c=4; bench/grpc_floor.py: .*\): {NUMBER} rps, {NUMBER} µs/call.*; the "
    rf"gateway's gRPC line is (-?{NUMBER[1:-1]}) µs above it \(target 550 µs: (-?{NUMBER[1:-1]}) µs left .*\)$"
)

SPLIT = rf"loop {NUMBER} µs \+ other threads {NUMBER} µs, the loop blocked {NUMBER} times per call"
THREADS = re.compile(rf"^  by thread, saturated \(.*\): REST: {SPLIT}; gRPC: {SPLIT}; gRPC floor: {SPLIT}$")


def numbers(groups: tuple[str, ...]) -> list[float]:
    return [float(g.replace(",", "")) for g in groups]


def cpu_of(line: re.Match[str] | None) -> float:
    """A saturated line's gateway CPU per request."""
    assert line is not None
    return numbers(line.groups()[1:])[1]


@pytest.fixture(scope="module")
def upstream_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    upstream = procs.start_upstream(None, 5, tmp_path_factory.mktemp("upstream"))
    try:
        yield upstream.ports[0]
    finally:
        procs.stop(upstream)


def test_the_lines_carry_positive_figures_and_the_targets(upstream_port: int, tmp_path: Path) -> None:
    text = saturated.run(
        upstream_port, tmp_path, MODEL, requests=200, concurrency=4, gateway_cpu=None, load_cpu=None
    )
    header, *lines = text.splitlines()
    assert "REST <= 350 µs, gRPC <= 550 µs" in header and "compared with the saturated figure" in header
    assert "errors" not in text, text  # every call answered
    busy = [SATURATED.match(line) for line in lines[:2]]
    floor = FLOOR.match(lines[2])
    threads = THREADS.match(lines[3])
    idle = [IDLE.match(line) for line in lines[4:]]
    assert len(lines) == 6 and all(busy) and floor and threads and all(idle), text
    targets = {}
    for match in busy:
        assert match is not None
        transport, *figures = match.groups()
        rps, cpu, target, cores, load_cpu = numbers(tuple(figures))
        assert rps > 0 and cpu > 0 and cores > 0 and load_cpu > 0
        targets[transport] = target
    assert targets == {"REST": 350, "gRPC": 550}
    # The floor's own figures, and the two it derives from the gRPC line's and the target.
    rps, bare, above, left = numbers(floor.groups())
    grpc_cpu = numbers(busy[1].groups()[1:])[1]  # type: ignore[union-attr]
    assert rps > 0 and bare > 0
    assert abs(bare + above - grpc_cpu) <= 1 and abs(bare + left - 550) <= 1  # each rounded to 1 µs
    # By thread: each run's loop and other threads add up to its whole (each rounded to 1 µs), and
    # under gRPC the loop waits for grpc.aio's threads. (How the two compare is the bench's to print:
    # this short run's few clock ticks cannot tell.)
    splits = numbers(threads.groups())
    for (loop, rest, waits), whole in zip(
        (splits[0:3], splits[3:6], splits[6:9]), (cpu_of(busy[0]), grpc_cpu, bare), strict=True
    ):
        assert loop >= 0 and rest >= 0 and waits >= 0 and abs(loop + rest - whole) <= 1
    assert splits[5] > 0 and splits[8] > 0  # the gRPC runs' loop blocked
    for match in idle:
        assert match is not None
        cpu, p50, added, direct = numbers(match.groups()[1:])
        # Through the gateway a call also makes the direct call: it cannot be faster.
        assert cpu > 0 and p50 > 0 and direct > 0 and added > 0
    assert (tmp_path / "loadgen").exists() and (tmp_path / "grpcload").exists()  # built in the workdir


def test_without_go_it_says_the_lines_need_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no `go` on it
    text = saturated.run(1, tmp_path, MODEL, requests=10, gateway_cpu=None, load_cpu=None)
    assert "need Go" in text and "\n" not in text
    assert not (tmp_path / "saturated").exists()  # nothing was started
