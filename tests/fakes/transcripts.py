"""Transcript loading and the control object shared by the fake upstream providers.

Transcripts live in ``tests/transcripts/<provider>/<scenario>.json``, one file a scenario::

    {
      "description": "what the scenario exercises",
      "source": "where the wire shapes come from",
      "status": 200,                     # HTTP status of the non-streaming answer (default 200)
      "response": {...},                 # the non-streaming body, replayed as is
      "response_disconnect": false,      # true: send half of that body, then drop the TCP connection
      "stream": [                        # the streamed answer, one item an SSE event
        {"event": "message_start", "data": {...}},   # "event" only where the provider names events
        {"data": {...}},
        {"data": "[DONE]"},              # a literal data line
        {"data": {...}, "usage_chunk": true},         # (chat) only sent with stream_options.include_usage
        {"disconnect": true}             # drop the TCP connection here
      ]
    }

Scenario selection (the same for every fake): ``fake.scenario`` when set, otherwise the request's model
name when it is ``scenario-<name>`` (``scenario-text``), otherwise ``text``. A ``scenario-<name>`` that
has no transcript is answered as the provider answers an unknown model (404).

The control object (``FakeUpstream``; each fake subclasses it) records every request, injects errors,
delays or holds the stream between events, and can drop the connection after N events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tests.fakes.server import serve_app

TRANSCRIPTS_DIR = Path(__file__).resolve().parent.parent / "transcripts"
DEFAULT_SCENARIO = "text"
SCENARIO_PREFIX = "scenario-"


def list_scenarios(provider: str) -> list[str]:
    """Names of the transcripts recorded for `provider` (``anthropic``, ``gemini``, ``chat``)."""
    return sorted(p.stem for p in (TRANSCRIPTS_DIR / provider).glob("*.json"))


def load_transcript(provider: str, scenario: str) -> dict[str, Any]:
    """The transcript `scenario` of `provider`; KeyError when there is none."""
    path = TRANSCRIPTS_DIR / provider / f"{scenario}.json"
    if not path.is_file():
        raise KeyError(scenario)
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


class SimulatedDisconnect(Exception):
    """Raised inside a response body: uvicorn then closes the socket without finishing the response."""


class _QuietDisconnects(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, SimulatedDisconnect):
                return False
            inner = getattr(exc, "exceptions", None)  # ExceptionGroup from anyio task groups
            exc = inner[0] if inner else exc.__cause__ or exc.__context__
        return True


logging.getLogger("uvicorn.error").addFilter(_QuietDisconnects())


@dataclass
class RecordedRequest:
    """One request exactly as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None when the body was empty or not JSON
    raw: bytes = b""


@dataclass
class InjectedError:
    status: int
    message: str | None = None
    retry_after: int | None = None
    body: Any = None  # replaces the provider-shaped body entirely when given


@dataclass
class FakeUpstream:
    """Control object of a fake provider. Subclasses set `provider` and build `app`."""

    provider: ClassVar[str] = ""

    api_key: str = "test-key"
    scenario: str | None = None
    event_delay: float = 0.0  # seconds slept before each streamed event
    requests: list[RecordedRequest] = field(default_factory=list)
    _errors: list[InjectedError] = field(default_factory=list, repr=False)
    _hold_after: int | None = field(default=None, repr=False)
    _released: threading.Event = field(default_factory=threading.Event, repr=False)
    _disconnect_after: int | None = field(default=None, repr=False)
    _disconnects_left: int | None = field(default=None, repr=False)
    _app: Any = field(default=None, repr=False)

    # ---- public control API ----------------------------------------------------------------------
    @property
    def app(self) -> Any:
        if self._app is None:
            self._app = self.build_app()
        return self._app

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Serve the fake on loopback; yields its base URL."""
        with serve_app(self.app) as base_url:
            yield base_url

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    @classmethod
    def scenarios(cls) -> list[str]:
        return list_scenarios(cls.provider)

    def fail_next(
        self,
        status: int,
        *,
        message: str | None = None,
        retry_after: int | None = None,
        body: Any = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests with `status` in the provider's error shape."""
        self._errors.extend(InjectedError(status, message, retry_after, body) for _ in range(times))

    def hold_after(self, n_events: int) -> None:
        """Streams pause after `n_events` events until `release()` (proves the gateway streams early)."""
        self._hold_after = n_events
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def disconnect_after(self, n_events: int | None, *, times: int | None = None) -> None:
        """Drop the TCP connection after `n_events` events of any stream (None: don't), for the next
        `times` streams (None: every one)."""
        self._disconnect_after = n_events
        self._disconnects_left = times

    def reset(self) -> None:
        self.requests.clear()
        self._errors.clear()
        self.scenario = None
        self.event_delay = 0.0
        self._hold_after = None
        self._released.set()
        self._disconnect_after = None
        self._disconnects_left = None

    # ---- hooks the provider apps use -------------------------------------------------------------
    def build_app(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    async def record(self, request: Request) -> RecordedRequest:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        rec = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            raw=raw,
        )
        self.requests.append(rec)
        return rec

    def take_error(self) -> InjectedError | None:
        return self._errors.pop(0) if self._errors else None

    def pick_scenario(self, model: Any) -> str:
        if self.scenario:
            return self.scenario
        if isinstance(model, str) and model.startswith(SCENARIO_PREFIX):
            return model[len(SCENARIO_PREFIX) :]
        return DEFAULT_SCENARIO

    def transcript(self, scenario: str) -> dict[str, Any] | None:
        try:
            return load_transcript(self.provider, scenario)
        except KeyError:
            return None

    def replay_json(self, transcript: dict[str, Any], body: bytes, headers: dict[str, str]) -> Response:
        """The non-streaming answer of a transcript (optionally cut short by a disconnect)."""
        status = transcript.get("status", 200)
        if not transcript.get("response_disconnect"):
            return Response(body, status_code=status, headers=headers, media_type="application/json")

        async def half() -> AsyncIterator[bytes]:
            yield body[: len(body) // 2]
            raise SimulatedDisconnect()

        return StreamingResponse(half(), status_code=status, headers=headers, media_type="application/json")

    async def events(
        self, items: list[dict[str, Any]], frame: Callable[[dict[str, Any]], bytes]
    ) -> AsyncIterator[bytes]:
        """Frame each transcript item, applying the delay / hold / disconnect settings."""
        for sent, item in enumerate(items):
            if item.get("disconnect") or (
                self._disconnect_after is not None and sent >= self._disconnect_after
            ):
                if self._disconnects_left is not None:
                    self._disconnects_left -= 1
                    if self._disconnects_left <= 0:
                        self._disconnect_after = None
                raise SimulatedDisconnect()
            if self._hold_after is not None and sent == self._hold_after:
                await asyncio.to_thread(self._released.wait, 30)
            if self.event_delay:
                await asyncio.sleep(self.event_delay)
            yield frame(item)


def dumps(obj: Any) -> str:
    """Compact JSON, as the providers put it on the wire."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def word_set(words: str) -> frozenset[str]:
    """A set of field names written as one space-separated string."""
    return frozenset(words.split())


def word_count(node: Any, skip: frozenset[str] = frozenset()) -> int:
    """Deterministic stand-in for a provider's tokenizer (counting endpoints): the whitespace-separated
    words of every string in `node`, leaving out the values of the keys in `skip` (structure, not text)."""
    if isinstance(node, str):
        return len(node.split())
    if isinstance(node, dict):
        return sum(word_count(v, skip) for k, v in node.items() if k not in skip)
    if isinstance(node, list):
        return sum(word_count(v, skip) for v in node)
    return 0
