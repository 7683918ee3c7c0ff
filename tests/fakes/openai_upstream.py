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
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import serve_app

TRANSCRIPTS_DIR = Path(__file__).resolve().parents[1] / "transcripts" / "openai"
TRANSCRIPT_SCENARIOS = (
    "text",
    "function_calls",
    "reasoning",
    "refusal",
    "error_event",
    "disconnect",
    "incomplete",
    "structured",
    # hosted tools (OpenAI runs them; the gateway relays every item and event)
    "web_search",
    "file_search",
    "image_generation",
    "code_interpreter",
    "computer_use_preview",
    "shell",
    "apply_patch",
    "local_shell",
    "custom_tool_call",  # a custom (free-form) tool call, for the chat bridge
    "custom_tools",
)
DEFAULT_API_KEY = "sk-fake-openai-0000000000000000"
SCENARIO_PREFIX = "scenario-"  # model "scenario-<name>" selects <name> when no scenario is queued/set
# Aliases resolve to the dated snapshot OpenAI reports in `model`; other known models are echoed.
MODEL_SNAPSHOTS = {
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "o3": "o3-2025-04-16",
    "o4-mini": "o4-mini-2025-04-16",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
}
DEFAULT_MODELS = tuple(MODEL_SNAPSHOTS) + tuple(MODEL_SNAPSHOTS.values())
CREATE_PARAMS = frozenset(
    {
        "background",
        "context_management",
        "conversation",
        "include",
        "input",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "model",
        "moderation",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
    }
)
INPUT_TOKENS_PARAMS = frozenset(
    {
        "conversation",
        "input",
        "instructions",
        "model",
        "parallel_tool_calls",
        "personality",
        "previous_response_id",
        "reasoning",
        "text",
        "tool_choice",
        "tools",
        "truncation",
    }
)
COMPACT_PARAMS = frozenset(
    {
        "input",
        "instructions",
        "model",
        "previous_response_id",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "service_tier",
    }
)
# Fields copied verbatim from the request into the response object when present.
ECHOED = (
    "background",
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "parallel_tool_calls",
    "previous_response_id",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "store",
    "temperature",
    "top_logprobs",
    "top_p",
    "truncation",
    "user",
)
_ID_KEYS = ("id", "item_id", "call_id")
_ID_RE = re.compile(r"^([a-z]+)_([0-9a-zA-Z]+)$")


# ---------------------------------------------------------------------------------------------- transcripts
@functools.cache
def _load(name: str) -> dict[str, Any]:
    return json.loads((TRANSCRIPTS_DIR / f"{name}.json").read_text())


def load_transcript(name: str) -> dict[str, Any]:
    """The transcript ``name`` (a deep copy): ``response`` (non-streaming body, optional), ``stream``
    (list of event payloads; the SSE event name is each payload's ``type``), ``disconnect`` (drop the
    connection after the events), ``nonstream_error`` (error scenario used for non-streaming calls)."""
    return copy.deepcopy(_load(name))


def load_errors() -> dict[str, dict[str, Any]]:
    """``{scenario: {"status": int, "headers": {...}, "body": {"error": {...}}}}``."""
    return copy.deepcopy(_load("errors")["errors"])


def _message(name: str, **fields: str) -> str:
    return _load("errors")["messages"][name].format(**fields)


class _Reject(Exception):
    """An OpenAI error response: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.headers = status, headers or {}
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}

    @classmethod
    def scenario(cls, name: str) -> _Reject:
        err = load_errors()[name]
        rej = cls(err["status"], "", headers=err.get("headers"))
        rej.body = err["body"]
        return rej


class UpstreamDisconnect(Exception):
    """Raised inside the ASGI app to make uvicorn abort the connection mid-response."""


def _not_a_scripted_disconnect(record: logging.LogRecord) -> bool:
    exc = record.exc_info[1] if record.exc_info else None
    while exc is not None:
        if isinstance(exc, UpstreamDisconnect):
            return False
        exc = exc.__cause__ or exc.__context__ or next(iter(getattr(exc, "exceptions", ())), None)
    return True


logging.getLogger("uvicorn.error").addFilter(_not_a_scripted_disconnect)


# ---------------------------------------------------------------------------------------------- validation
_TYPE_NAMES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a decimal",
    dict: "an object",
    list: "an array",
    type(None): "null",
}
_TYPED = [
    (
        (str,),
        "a string",
        ("model", "previous_response_id", "user", "safety_identifier", "prompt_cache_key", "truncation"),
    ),
    ((str, list), "one of a string or array of input items", ("input", "instructions")),
    ((bool,), "a boolean", ("stream", "store", "background", "parallel_tool_calls")),
    ((int, float), "a decimal", ("temperature", "top_p")),
    ((int,), "an integer", ("max_output_tokens", "max_tool_calls", "top_logprobs")),
    ((dict,), "an object", ("metadata", "reasoning", "text", "stream_options", "prompt")),
    ((list,), "an array", ("tools", "include")),
    ((str, dict), "one of a string or an object", ("tool_choice",)),
]


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


def validate_create(body: Any, allowed: frozenset[str] = CREATE_PARAMS, model_required: bool = True) -> None:
    """The basic request checks OpenAI applies to POST /v1/responses (raises _Reject with its error body)."""
    if not isinstance(body, dict):
        got = _TYPE_NAMES.get(type(body), "an unknown type")
        raise _Reject(
            400, f"Invalid type for body: expected an object, but got {got} instead.", code="invalid_type"
        )
    for key in body:
        if key not in allowed:
            raise _Reject(400, f"Unknown parameter: '{key}'.", key, "unknown_parameter")
    if model_required and body.get("model") is None:
        raise _Reject(400, "Missing required parameter: 'model'.", "model", "missing_required_parameter")
    for kinds, expected, names in _TYPED:
        for name in names:
            if body.get(name) is not None and not _is(body[name], kinds):
                got = _TYPE_NAMES.get(type(body[name]), "an unknown type")
                raise _Reject(
                    400,
                    f"Invalid type for '{name}': expected {expected}, but got {got} instead.",
                    name,
                    "invalid_type",
                )
    for name, hi in (("temperature", 2), ("top_p", 1)):
        value = body.get(name)
        if _is(value, (int, float)) and not 0 <= value <= hi:
            above = value > hi
            raise _Reject(
                400,
                f"Invalid '{name}': decimal {'above maximum' if above else 'below minimum'} value. "
                f"Expected a value {f'<= {hi}' if above else '>= 0'}, but got {float(value)} instead.",
                name,
                "decimal_above_max_value" if above else "decimal_below_min_value",
            )
    if _is(mot := body.get("max_output_tokens"), (int,)) and mot < 16:
        raise _Reject(
            400,
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got "
            f"{mot} instead.",
            "max_output_tokens",
            "integer_below_min_value",
        )
    if body.get("stream") is not True and body.get("stream_options") is not None:
        raise _Reject(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
            "invalid_value",
        )
    for i, tool in enumerate(body.get("tools") or []):
        for field in ("type", "name"):
            needed = field == "type" or (isinstance(tool, dict) and tool.get("type") == "function")
            if needed and not (isinstance(tool, dict) and tool.get(field)):
                raise _Reject(
                    400,
                    f"Missing required parameter: 'tools[{i}].{field}'.",
                    f"tools[{i}].{field}",
                    "missing_required_parameter",
                )


# ---------------------------------------------------------------------------------------------- helpers
def _new_id(prefix: str, suffix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}{suffix}"


def _walk(node: Any, fn) -> Any:
    """Call ``fn`` on every dict in ``node`` (depth first, parents before children)."""
    if isinstance(node, dict):
        fn(node)
        for value in node.values():
            _walk(value, fn)
    elif isinstance(node, list):
        for value in node:
            _walk(value, fn)
    return node


def _remap_ids(doc: Any, suffix: str) -> Any:
    """Give every resp_/msg_/fc_/rs_/call_ id a fresh value, consistently across the transcript."""
    mapping: dict[str, str] = {}

    def fresh(node: dict[str, Any]) -> None:
        for key in _ID_KEYS:
            value = node.get(key)
            if isinstance(value, str) and (m := _ID_RE.match(value)):
                if value not in mapping:
                    mapping[value] = (
                        f"call_{secrets.token_urlsafe(18)[:24]}"
                        if m.group(1) == "call"
                        else _new_id(m.group(1), suffix)
                    )
                node[key] = mapping[value]

    return _walk(doc, fresh)


def _reflect(resp: dict[str, Any], req: dict[str, Any], created: int) -> None:
    """Patch a transcript response object with the request's values, as OpenAI echoes them."""
    model = req.get("model")
    if isinstance(model, str):
        resp["model"] = MODEL_SNAPSHOTS.get(model, model)
    resp["created_at"] = created
    if resp.get("completed_at") is not None:
        resp["completed_at"] = created + 1
    for key in ECHOED:
        if req.get(key) is not None:
            resp[key] = req[key]
    resp["metadata"] = req.get("metadata") or {}
    resp["tool_choice"] = req.get("tool_choice") or "auto"
    if "tools" in req or resp.get("tools"):  # function tools come back with description/strict filled in
        resp["tools"] = [
            {"type": "function", "description": None, "strict": True, **tool}
            if tool.get("type") == "function"
            else dict(tool)
            for tool in req.get("tools") or []
        ]
    if isinstance(req.get("reasoning"), dict):
        resp["reasoning"] = {**(resp.get("reasoning") or {}), **req["reasoning"]}
    if isinstance(req.get("text"), dict):
        text = {**(resp.get("text") or {}), **req["text"]}
        if isinstance(text.get("format"), dict) and text["format"].get("type") == "json_schema":
            text["format"] = {"description": None, **text["format"]}
        resp["text"] = text


def _input_items(req: dict[str, Any], suffix: str) -> list[dict[str, Any]]:
    """The request's input as OpenAI lists it under /input_items (ids added, text content normalized)."""
    raw = req.get("input")
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])
    out = []
    for item in items:
        item = copy.deepcopy(item) if isinstance(item, dict) else {"type": "unknown"}
        if "role" in item and "type" not in item:
            item = {"type": "message", **item}
        if item.get("type") == "message":
            if isinstance(item.get("content"), str):
                kind = "output_text" if item.get("role") == "assistant" else "input_text"
                extra = {"annotations": []} if kind == "output_text" else {}
                item["content"] = [{"type": kind, "text": item["content"], **extra}]
            item.setdefault("status", "completed")
        prefix = {"message": "msg", "function_call_output": "fco", "function_call": "fc", "reasoning": "rs"}
        item.setdefault("id", _new_id(prefix.get(item.get("type"), "item"), suffix))
        out.append(item)
    return out


def _count_tokens(req: dict[str, Any]) -> int:
    """Deterministic stand-in for the tokenizer: whitespace-separated words of the input's texts."""

    def strings(node: Any) -> Iterator[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, (dict, list)):
            for key, value in node.items() if isinstance(node, dict) else enumerate(node):
                if key not in ("type", "role", "id", "call_id", "status", "name"):
                    yield from strings(value)

    return sum(len(text.split()) for text in strings([req.get("input"), req.get("instructions")]))


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


class _SSEResponse(Response):
    """``event: <type>\\ndata: <compact json>\\n\\n`` frames, each sent (and flushed) on its own; on
    ``disconnect`` the app raises after the last frame so uvicorn aborts the connection without the final
    chunk (the client sees a protocol error, not a clean end of stream)."""

    def __init__(
        self,
        events: list[dict[str, Any]],
        delay: float,
        disconnect: bool,
        headers: dict[str, str],
        stall: bool = False,
    ):
        super().__init__(headers=headers)
        self.stall = stall
        self.raw_headers = [
            (k.encode(), v.encode())
            for k, v in {
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                **headers,
            }.items()
        ]
        self.events, self.delay, self.disconnect = events, delay, disconnect

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        for event in self.events:
            if self.delay:
                await asyncio.sleep(self.delay)
            data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
            frame = f"event: {event['type']}\ndata: {data}\n\n".encode()
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        if self.stall:
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        if self.disconnect:
            await asyncio.sleep(0.05)  # let the frames reach the socket before the abort
            raise UpstreamDisconnect("scripted mid-stream disconnect")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _StalledResponse(Response):
    """Nothing at all, until the client hangs up (an upstream that never answers)."""

    async def __call__(self, scope, receive, send) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass


class _DroppedResponse(Response):
    """Headers and a fragment of a JSON body, then the connection is aborted (non-streaming disconnect)."""

    async def __call__(self, scope, receive, send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"2048")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"id":"resp_', "more_body": True})
        await asyncio.sleep(0.05)
        raise UpstreamDisconnect("scripted disconnect")


def make_openai_app(api_key: str = DEFAULT_API_KEY, **kwargs: Any) -> FakeOpenAI:
    """Build the fake (an ASGI app with its control API); serve it with ``serve_app(fake)``."""
    return FakeOpenAI(api_key, **kwargs)


@contextlib.contextmanager
def serve_openai(api_key: str = DEFAULT_API_KEY, **kwargs: Any) -> Iterator[FakeOpenAI]:
    """Run a fake on loopback; ``fake.base_url`` / ``fake.api_base`` (``<base>/v1``) are set while inside."""
    fake = make_openai_app(api_key, **kwargs)
    with fake.serve():
        yield fake
