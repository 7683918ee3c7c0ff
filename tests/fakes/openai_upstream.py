"""Fake OpenAI Responses API upstream, replaying recorded transcripts over real HTTP.

Usage (the gateway calls ``{fake.api_base}/responses``)::

    with serve_openai(api_key="sk-test") as fake:      # or: make_openai_app(...) + serve_app(fake)
        fake.enqueue("error-429", "text")              # next two POST /v1/responses, in order
        fake.fail_next(503)                            # or inject an HTTP error directly
        fake.create_requests[-1].body / .headers       # what the gateway sent upstream

Scenario of each ``POST /v1/responses`` (first that applies): the queue filled by ``fake.enqueue(*names)``
/ ``fake.fail_next(status)`` (FIFO); ``fake.scenario`` when set; the request's model when it is
``scenario-<name>`` (an unknown name is answered like an unknown model: 400 model_not_found); ``text``.
A request rejected by auth/validation does not consume the queue. Names:

* transcripts (``tests/transcripts/openai/<name>.json``): text, function_calls, reasoning, refusal,
  error_event, disconnect, incomplete, structured; hosted tools: web_search, file_search, image_generation,
  code_interpreter, computer_use_preview, shell, apply_patch, local_shell
* HTTP errors (``errors.json``): error-400, error-401, error-404, error-429, error-429-quota, error-500,
  error-503 (returned for streaming requests too, as OpenAI does before the stream starts)

Responses reflect the request as OpenAI does (model snapshot, instructions, tools, temperature,
metadata, previous_response_id, store, reasoning, text, ...); ids and timestamps are fresh per call.

The pieces beside this module: ``openai_transcripts`` (transcripts, canned errors, the OpenAI error),
``openai_validation`` (request checks), ``openai_shaping`` (ids, reflected fields, input items, token
counts) and ``openai_asgi`` (the SSE stream and the scripted faults). The names tests import are all
importable from here.
"""

from __future__ import annotations

import contextlib
import copy
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.openai_asgi import UpstreamDisconnect, _DroppedResponse, _SSEResponse, _StalledResponse
from tests.fakes.openai_shaping import (
    ECHOED,
    MODEL_SNAPSHOTS,
    _count_tokens,
    _input_items,
    _new_id,
    _reflect,
    _remap_ids,
    _walk,
)
from tests.fakes.openai_transcripts import (
    TRANSCRIPT_SCENARIOS,
    TRANSCRIPTS_DIR,
    _message,
    _Reject,
    load_errors,
    load_transcript,
)
from tests.fakes.openai_validation import (
    COMPACT_PARAMS,
    CREATE_PARAMS,
    INPUT_TOKENS_PARAMS,
    validate_create,
)
from tests.fakes.server import serve_app

__all__ = [
    "COMPACT_PARAMS",
    "CREATE_PARAMS",
    "DEFAULT_API_KEY",
    "DEFAULT_MODELS",
    "ECHOED",
    "INPUT_TOKENS_PARAMS",
    "MODEL_SNAPSHOTS",
    "SCENARIO_PREFIX",
    "TRANSCRIPTS_DIR",
    "TRANSCRIPT_SCENARIOS",
    "FakeOpenAI",
    "RecordedRequest",
    "UpstreamDisconnect",
    "load_errors",
    "load_transcript",
    "make_openai_app",
    "serve_openai",
    "validate_create",
]

DEFAULT_API_KEY = "sk-fake-openai-0000000000000000"
SCENARIO_PREFIX = "scenario-"  # model "scenario-<name>" selects <name> when no scenario is queued/set
DEFAULT_MODELS = tuple(MODEL_SNAPSHOTS) + tuple(MODEL_SNAPSHOTS.values())


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    raw: bytes
    body: Any = None  # parsed JSON, or None
    scenario: str | None = None  # the scenario played for a POST /v1/responses


# ---------------------------------------------------------------------------------------------- the fake
class FakeOpenAI:
    """Control object + ASGI app (``fake.app``; the object itself is also ASGI-callable)."""

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        scenario: str | None = None,
        event_delay: float = 0.0,
        known_models: tuple[str, ...] | None = DEFAULT_MODELS,
    ) -> None:
        self.api_key = api_key
        self.scenario = scenario  # used when the queue is empty; None: model "scenario-<name>", else "text"
        self.event_delay = event_delay  # seconds slept before each SSE event
        # Send this many SSE events, then hold the stream open, silent, until the client hangs up (an
        # upstream that stalls mid-response).
        self.stall_after: int | None = None
        self.known_models = known_models  # None accepts any model name
        self.requests: list[RecordedRequest] = []
        self.stored: dict[str, dict[str, Any]] = {}  # response id -> {"response": ..., "input_items": [...]}
        self.base_url: str | None = None  # set by serve_openai
        self._queue: deque[str | _Reject] = deque()
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                self._route("POST", "/v1/responses", self._create),
                self._route("POST", "/v1/responses/input_tokens", self._input_tokens),
                self._route("POST", "/v1/responses/compact", self._compact),
                self._route("GET", "/v1/responses/{rid}", self._get),
                self._route("DELETE", "/v1/responses/{rid}", self._delete),
                self._route("POST", "/v1/responses/{rid}/cancel", self._cancel),
                self._route("GET", "/v1/responses/{rid}/input_items", self._list_input_items),
                self._route("GET", "/v1/models", self._models),
                self._route("GET", "/v1/models/{model:path}", self._model),
            ]
        )

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)

    # -- control API ----------------------------------------------------------------------------------
    @property
    def api_base(self) -> str:
        assert self.base_url, "not served; use serve_openai() or set base_url"
        return f"{self.base_url}/v1"

    def enqueue(self, *scenarios: str) -> None:
        """Script the scenarios of the next POST /v1/responses calls, in order."""
        for name in scenarios:
            if name not in TRANSCRIPT_SCENARIOS and name not in load_errors():
                raise ValueError(f"unknown OpenAI fake scenario {name!r}")
        with self._lock:
            self._queue.extend(scenarios)

    def fail_next(
        self,
        status: int,
        *,
        message: str | None = None,
        retry_after: int | None = None,
        body: Any = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` POST /v1/responses with ``status`` (canned OpenAI body for 400/401/404/429/
        500/503 unless ``message``/``body`` given), like the sibling fakes' ``FakeUpstream.fail_next``."""
        canned = load_errors().get(
            f"error-{status}", {"body": {"error": {"message": "Error", "type": "server_error"}}}
        )
        rej = _Reject(
            status, message or "", headers={"retry-after": str(retry_after)} if retry_after else None
        )
        rej.body = body or {"error": {**canned["body"]["error"], **({"message": message} if message else {})}}
        with self._lock:
            self._queue.extend([rej] * times)

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on loopback; yields the base URL (``api_base`` is ``<base>/v1``)."""
        with serve_app(self) as base_url:
            self.base_url = base_url
            yield base_url

    @property
    def create_requests(self) -> list[RecordedRequest]:
        """Every POST /v1/responses received (including rejected ones)."""
        return [r for r in self.requests if r.method == "POST" and r.path == "/v1/responses"]

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
        self.requests.clear()
        self.stored.clear()
        self.scenario, self.event_delay, self.stall_after = None, 0.0, None

    # -- plumbing -------------------------------------------------------------------------------------
    def _route(self, method: str, path: str, handler) -> Route:
        """Record the request, check the API key (and JSON body for POST), map _Reject to OpenAI errors."""

        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            rec = RecordedRequest(
                method,
                request.url.path,
                dict(request.query_params),
                {k.lower(): v for k, v in request.headers.items()},
                raw,
            )
            with contextlib.suppress(ValueError):
                rec.body = json.loads(raw) if raw else None
            self.requests.append(rec)
            try:
                self._auth(rec)
                if method == "POST" and rec.body is None and not path.endswith("/cancel"):
                    raise _Reject(400, _message("json_parse"))
                return await handler(rec, **request.path_params)
            except _Reject as rej:
                headers = {**self._headers(f"req_{secrets.token_hex(16)}"), **rej.headers}
                return JSONResponse(rej.body, rej.status, headers=headers)

        return Route(path, endpoint, methods=[method])

    @staticmethod
    def _headers(request_id: str) -> dict[str, str]:
        return {
            "x-request-id": request_id,
            "openai-version": "2020-10-01",
            "openai-processing-ms": "42",
            "openai-organization": "org-fake0000000000000000000",
        }

    def _auth(self, rec: RecordedRequest) -> None:
        key = rec.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not rec.headers.get("authorization", "").startswith("Bearer ") or not key:
            raise _Reject(401, _message("missing_api_key"))
        if key != self.api_key:
            masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else key
            raise _Reject(401, _message("invalid_api_key", masked=masked), code="invalid_api_key")

    def _check_model(self, model: Any) -> None:
        if self.known_models is not None and isinstance(model, str) and model not in self.known_models:
            raise _Reject(400, f"The requested model '{model}' does not exist.", "model", "model_not_found")

    def _stored(self, rid: str) -> dict[str, Any]:
        if rid not in self.stored:
            raise _Reject(404, f"Response with id '{rid}' not found.")
        return self.stored[rid]

    # -- POST /v1/responses ---------------------------------------------------------------------------
    async def _create(self, rec: RecordedRequest) -> Response:
        req = rec.body
        validate_create(req)
        if not req["model"].startswith(SCENARIO_PREFIX):
            self._check_model(req["model"])
        prev = req.get("previous_response_id")
        if prev is not None and prev not in self.stored:
            raise _Reject(
                400,
                f"Previous response with id '{prev}' not found.",
                "previous_response_id",
                "previous_response_not_found",
            )
        with self._lock:
            picked = self._queue.popleft() if self._queue else self.scenario
        if isinstance(picked, _Reject):
            rec.scenario = f"error-{picked.status}"
            raise picked
        model = req["model"]
        rec.scenario = scenario = picked or (
            model.removeprefix(SCENARIO_PREFIX) if model.startswith(SCENARIO_PREFIX) else "text"
        )
        if scenario not in TRANSCRIPT_SCENARIOS:
            if scenario not in load_errors():
                raise _Reject(
                    400, f"The requested model '{model}' does not exist.", "model", "model_not_found"
                )
            raise _Reject.scenario(scenario)
        transcript, stream = load_transcript(scenario), req.get("stream") is True
        if not stream and transcript.get("disconnect"):
            return _DroppedResponse()
        if not stream and transcript.get("nonstream_error"):
            raise _Reject.scenario(transcript["nonstream_error"])
        request_id, suffix, created = f"req_{secrets.token_hex(16)}", secrets.token_hex(8), int(time.time())
        doc = _remap_ids({"response": transcript.get("response"), "stream": transcript["stream"]}, suffix)
        include = req.get("include") or []
        keep_obfuscation = (req.get("stream_options") or {}).get("include_obfuscation", True) is not False

        def patch(node: dict[str, Any]) -> None:
            if node.get("object") == "response":
                _reflect(node, req, created)
            if node.get("type") == "reasoning" and "reasoning.encrypted_content" not in include:
                node.pop("encrypted_content", None)
            if not keep_obfuscation:
                node.pop("obfuscation", None)
            if isinstance(node.get("message"), str):
                node["message"] = node["message"].replace("{request_id}", request_id)

        _walk(doc, patch)
        headers = self._headers(request_id)
        if not stream and self.stall_after is not None:
            return _StalledResponse()
        if not stream:
            response = doc["response"]
            self._remember(req, response, suffix)
            if req.get("background") is True:
                response = {**response, "status": "queued", "completed_at": None, "output": [], "usage": None}
                self.stored[response["id"]]["queued"] = True
            return JSONResponse(response, headers=headers)
        events = doc["stream"]
        terminal = [
            e["response"]
            for e in events
            if e["type"] in ("response.completed", "response.incomplete", "response.failed")
        ]
        if terminal:
            self._remember(req, terminal[-1], suffix)
        if self.stall_after is not None:
            return _SSEResponse(events[: self.stall_after], self.event_delay, False, headers, stall=True)
        return _SSEResponse(events, self.event_delay, bool(transcript.get("disconnect")), headers)

    def _remember(self, req: dict[str, Any], response: dict[str, Any], suffix: str) -> None:
        if req.get("store") is not False:
            self.stored[response["id"]] = {
                "response": copy.deepcopy(response),
                "input_items": _input_items(req, suffix),
            }

    # -- stored responses -----------------------------------------------------------------------------
    async def _get(self, rec: RecordedRequest, rid: str) -> Response:
        entry = self._stored(rid)
        entry.pop("queued", None)  # a background response has "finished" by the time it is polled
        return JSONResponse(entry["response"], headers=self._headers(f"req_{secrets.token_hex(16)}"))

    async def _delete(self, rec: RecordedRequest, rid: str) -> Response:
        self._stored(rid)
        del self.stored[rid]
        return JSONResponse({"id": rid, "object": "response", "deleted": True})

    async def _cancel(self, rec: RecordedRequest, rid: str) -> Response:
        entry = self._stored(rid)
        if not entry["response"].get("background"):
            raise _Reject(400, "Cannot cancel a synchronous response.")
        if entry.pop("queued", False):
            entry["response"].update(status="cancelled", completed_at=None, output=[], usage=None)
        return JSONResponse(entry["response"])

    async def _list_input_items(self, rec: RecordedRequest, rid: str) -> Response:
        items = list(self._stored(rid)["input_items"])
        order, after, limit = (
            rec.query.get("order", "desc"),
            rec.query.get("after"),
            rec.query.get("limit", "20"),
        )
        if order not in ("asc", "desc"):
            raise _Reject(
                400,
                f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.",
                "order",
                "invalid_value",
            )
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            raise _Reject(
                400,
                f"Invalid 'limit': integer out of range. Expected a value between 1 and 100, but got "
                f"{limit} instead.",
                "limit",
                "invalid_value",
            )
        if order == "desc":
            items.reverse()
        if after is not None:
            ids = [item["id"] for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        page = items[: int(limit)]
        return JSONResponse(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(items) > len(page),
            }
        )

    # -- token counting / compaction / models ---------------------------------------------------------
    async def _input_tokens(self, rec: RecordedRequest) -> Response:
        validate_create(rec.body, INPUT_TOKENS_PARAMS, model_required=False)
        self._check_model(rec.body.get("model"))
        return JSONResponse({"object": "response.input_tokens", "input_tokens": _count_tokens(rec.body)})

    async def _compact(self, rec: RecordedRequest) -> Response:
        validate_create(rec.body, COMPACT_PARAMS)
        self._check_model(rec.body["model"])
        suffix, tokens = secrets.token_hex(8), _count_tokens(rec.body)
        kept = [
            i
            for i in _input_items(rec.body, suffix)
            if i.get("type") == "message" and i.get("role") == "user"
        ]
        output = [
            *kept,
            {
                "id": _new_id("cmp", suffix),
                "type": "compaction",
                "encrypted_content": "gAAAAAB" + secrets.token_urlsafe(96),
            },
        ]
        usage = {
            "input_tokens": tokens,
            "input_tokens_details": {"cache_write_tokens": 0, "cached_tokens": 0},
            "output_tokens": 64,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": tokens + 64,
        }
        return JSONResponse(
            {
                "id": _new_id("resp", suffix),
                "object": "response.compaction",
                "created_at": int(time.time()),
                "output": output,
                "usage": usage,
            }
        )

    @staticmethod
    def _model_obj(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1744316542, "owned_by": "system"}

    async def _models(self, rec: RecordedRequest) -> Response:
        return JSONResponse({"object": "list", "data": [self._model_obj(m) for m in self.known_models or ()]})

    async def _model(self, rec: RecordedRequest, model: str) -> Response:
        if self.known_models is not None and model not in self.known_models:
            raise _Reject(404, f"The model '{model}' does not exist", "model", "model_not_found")
        return JSONResponse(self._model_obj(model))


def make_openai_app(api_key: str = DEFAULT_API_KEY, **kwargs: Any) -> FakeOpenAI:
    """Build the fake (an ASGI app with its control API); serve it with ``serve_app(fake)``."""
    return FakeOpenAI(api_key, **kwargs)


@contextlib.contextmanager
def serve_openai(api_key: str = DEFAULT_API_KEY, **kwargs: Any) -> Iterator[FakeOpenAI]:
    """Run a fake on loopback; ``fake.base_url`` / ``fake.api_base`` (``<base>/v1``) are set while inside."""
    fake = make_openai_app(api_key, **kwargs)
    with fake.serve():
        yield fake
