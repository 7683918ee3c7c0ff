"""bench/floor_proxy, the floor of the c=1 latency line: a real process in front of the real fast
upstream, asked several times over one kept-alive connection, answers exactly what the upstream does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from bench import procs


@pytest.fixture
def ports(tmp_path: Path) -> Iterator[tuple[int, int]]:
    upstream = procs.start_upstream(None, 5, tmp_path)
    try:
        floor = procs.start_floor_proxy(None, upstream.ports[0], tmp_path)
        try:
            yield upstream.ports[0], floor.ports[0]
        finally:
            procs.stop(floor)
    finally:
        procs.stop(upstream)


def test_the_floor_relays_requests_and_replies_unchanged(ports: tuple[int, int]) -> None:
    upstream, floor = ports
    body = orjson.dumps({"model": "gpt-4.1", "input": "Say hello."})
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{floor}/v1") as via,
        httpx.Client(base_url=f"http://127.0.0.1:{upstream}/v1") as direct,
    ):
        expected = direct.post("/responses", content=body, headers={"content-type": "application/json"})
        ids = set()
        for _ in range(3):
            got = via.post("/responses", content=body, headers={"content-type": "application/json"})
            assert got.status_code == 200 and got.headers["content-type"] == "application/json"
            reply, want = got.json(), expected.json()
            ids.add(reply.pop("id"))
            want.pop("id")
            for item in (*reply["output"], *want["output"]):
                item.pop("id")
            assert reply == want  # the upstream's reply, byte for byte but for its fresh ids
        assert len(ids) == 3  # each request reached the upstream (fresh ids), none answered twice
