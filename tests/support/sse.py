"""Server-Sent Events as the tests read them: frames as they arrive, or the JSON payloads of a body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Frame:
    raw: str
    event: str | None
    data_lines: list[str]

    @property
    def data(self) -> str:
        return "\n".join(self.data_lines)

    def json(self) -> Any:
        return json.loads(self.data)


def parse_frame(raw: str) -> Frame:
    event, data = None, []
    for line in raw.split("\n"):
        if line.startswith("event: "):
            assert event is None, f"two event lines in {raw!r}"
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
        else:
            raise AssertionError(f"unexpected line {line!r} in frame {raw!r}")
    return Frame(raw, event, data)


def iter_frames(response: httpx.Response) -> Iterator[Frame]:
    """SSE frames as they arrive (a frame ends at a blank line)."""
    buffer = ""
    for text in response.iter_text():
        buffer += text
        while "\n\n" in buffer:
            raw, buffer = buffer.split("\n\n", 1)
            yield parse_frame(raw)
    assert buffer == "", f"trailing bytes after the last frame: {buffer!r}"


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON payloads of an SSE body up to `[DONE]`; each `event:` name must match its `type`."""
    out: list[dict[str, Any]] = []
    for frame in iter_frames(response):
        if frame.data == "[DONE]":
            break
        payload = frame.json()
        assert frame.event is None or frame.event == payload.get("type"), frame.raw
        out.append(payload)
    return out
