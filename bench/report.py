"""The printed table: latency, added latency against the direct call, TTFB and throughput."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.load import Samples, percentile


@dataclass
class Row:
    target: str  # "direct REST", "floor REST", "gateway REST", "gateway gRPC"
    mode: str  # "unary" or "stream"
    concurrency: int
    samples: Samples
    baseline: Samples | None  # the direct call in the same mode and concurrency

    def p(self, q: float, ttfb: bool = False) -> float:
        return percentile(self.samples.ttfbs if ttfb else self.samples.latencies, q)

    def added(self, q: float, ttfb: bool = False) -> float:
        if self.baseline is None:
            return math.nan
        return self.p(q, ttfb) - percentile(self.baseline.ttfbs if ttfb else self.baseline.latencies, q)

    @property
    def events(self) -> float:
        return percentile([float(e) for e in self.samples.events], 50)


def _ms(seconds: float, signed: bool = False) -> str:
    if math.isnan(seconds):
        return "-"
    return f"{seconds * 1000:+.3f}" if signed else f"{seconds * 1000:.3f}"


COLUMNS = (
    ("scenario", 20),
    ("c", 3),
    ("n", 5),
    ("p50 ms", 8),
    ("p99 ms", 8),
    ("+p50 ms", 8),
    ("+p99 ms", 8),
    ("ttfb p50", 8),
    ("+ttfb p50", 9),
    ("RPS", 7),
    ("gw CPU ms", 9),
    ("ev/resp", 7),
    ("err", 4),
)


def table(rows: list[Row]) -> str:
    def line(cells: list[str]) -> str:
        first = cells[0].ljust(COLUMNS[0][1])
        rest = (c.rjust(w) for c, (_, w) in zip(cells[1:], COLUMNS[1:], strict=True))
        return "  ".join((first, *rest))

    out = [line([name for name, _ in COLUMNS]), "-" * (sum(w for _, w in COLUMNS) + 2 * (len(COLUMNS) - 1))]
    for r in rows:
        s = r.samples
        out.append(
            line(
                [
                    f"{r.target} {r.mode}",
                    str(r.concurrency),
                    str(len(s.latencies)),
                    _ms(r.p(50)),
                    _ms(r.p(99)),
                    _ms(r.added(50), signed=True),
                    _ms(r.added(99), signed=True),
                    _ms(r.p(50, ttfb=True)),
                    _ms(r.added(50, ttfb=True), signed=True),
                    f"{s.rps:.0f}",
                    _ms(s.cpu),
                    f"{r.events:.0f}" if r.mode == "stream" else "-",
                    str(s.errors),
                ]
            )
        )
    return "\n".join(out)


def per_event(short: list[Row], long: list[Row]) -> str:
    """Cost per streamed event between a short and a long stream (c=1): the slope of p50 latency (what
    a client sees, sensitive to the machine's load) and of the gateway's CPU time (what it costs,
    which does not depend on what else runs)."""
    direct_short = next(r for r in short if r.target.startswith("direct"))
    direct_long = next(r for r in long if r.target.startswith("direct"))
    direct_slope = _slope(direct_short, direct_long)
    out = [
        f"{'target':20}  {'events':>11}  {'p50 ms':>17}  {'ms/event':>9}  {'added us/event':>14}"
        f"  {'gw CPU us/event':>15}",
    ]
    for s, lg in zip(short, long, strict=True):
        slope = _slope(s, lg)
        added = "-" if s is direct_short else f"{(slope - direct_slope) * 1e6:+.1f}"
        cpu = "-" if s is direct_short else f"{_cpu_slope(s, lg) * 1e6:.1f}"
        out.append(
            f"{s.target:20}  {s.events:>5.0f} -> {lg.events:>4.0f}  "
            f"{_ms(s.p(50)):>8} -> {_ms(lg.p(50)):>7}  {slope * 1000:>9.4f}  {added:>14}  {cpu:>15}"
        )
    cpu_by_target = {s.target: _cpu_slope(s, lg) * 1e6 for s, lg in zip(short, long, strict=True)}
    floor, gateway = cpu_by_target.get("floor gRPC"), cpu_by_target.get("gateway gRPC")
    if floor is not None and gateway is not None:
        out.append(
            f"gRPC per event: gateway {gateway:.1f} µs (target <= 40 µs) = grpcio's own {floor:.1f} µs "
            f"(floor gRPC: bench/grpc_floor.py, bare grpc.aio streaming the same events canned; its CPU "
            f"column is its own process's) + the gateway's own work {gateway - floor:.1f} µs"
        )
    return "\n".join(out)


def _cpu_slope(short: Row, long: Row) -> float:
    return (long.samples.cpu - short.samples.cpu) / max(1.0, long.events - short.events)


def _slope(short: Row, long: Row) -> float:
    return (long.p(50) - short.p(50)) / max(1.0, long.events - short.events)
