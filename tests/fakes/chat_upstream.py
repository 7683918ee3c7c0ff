"""Fake OpenAI Chat Completions API (``POST {base}/v1/chat/completions``), as every OpenAI-compatible server
speaks it, on loopback and fed from recorded transcripts.

    fake = FakeChat(api_key="test-key")           # lenient=True: accept unknown fields, like vLLM / Ollama
    with fake.serve() as base_url:
        client = openai.OpenAI(api_key="test-key", base_url=f"{base_url}/v1", max_retries=0)
        client.chat.completions.create(model="scenario-tool_calls", messages=[...])

Streams are ``data: <json>\\n\\n`` chunks ending with ``data: [DONE]``; the usage-only final chunk is sent
only with ``stream_options.include_usage`` (and then every other chunk carries ``"usage": null``).
See ``tests/fakes/transcripts.py`` for the control API and scenario selection.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.transcripts import FakeUpstream, dumps, word_set

TOP_LEVEL = word_set(
    "model messages stream audio frequency_penalty function_call functions logit_bias logprobs "
    "max_completion_tokens max_tokens metadata modalities n parallel_tool_calls prediction "
    "presence_penalty prompt_cache_key prompt_cache_retention reasoning_effort response_format "
    "safety_identifier seed service_tier stop store stream_options temperature tool_choice tools "
    "top_logprobs top_p user verbosity web_search_options"
)
PARTS_BY_ROLE = {
    "system": {"text"},
    "developer": {"text"},
    "user": {"text", "image_url", "input_audio", "file"},
    "assistant": {"text", "refusal"},
    "tool": {"text"},
}
ERRORS = {  # status -> (type, code, default message)
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it.",
    ),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again in 1s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later"),
}


class Invalid(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param, self.code = param, code


def error_response(
    status: int,
    message: str | None = None,
    *,
    retry_after: int | None = None,
    body: Any = None,
    param: str | None = None,
    code: str | None = None,
) -> Response:
    """An error in OpenAI's shape: ``{"error":{"message","type","param","code"}}``."""
    etype, default_code, default_message = ERRORS.get(
        status, ("invalid_request_error" if status < 500 else "server_error", None, "Error")
    )
    if body is None:
        body = {
            "error": {
                "message": message or default_message,
                "type": etype,
                "param": param,
                "code": code or default_code,
            }
        }
    headers = {"x-request-id": "req_" + uuid.uuid4().hex}
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return JSONResponse(body, status_code=status, headers=headers)


def _validate_content(i: int, role: str, content: Any) -> None:
    if content is None and role == "assistant":
        return
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise Invalid(
            f"Invalid type for 'messages[{i}].content': expected one of a string or array of objects, but got {type(content).__name__} instead.",
            f"messages[{i}].content",
            "invalid_type",
        )
    for j, part in enumerate(content):
        loc = f"messages[{i}].content[{j}]"
        ptype = part.get("type") if isinstance(part, dict) else None
        if ptype not in PARTS_BY_ROLE[role]:
            allowed = ", ".join(f"'{t}'" for t in sorted(PARTS_BY_ROLE[role]))
            raise Invalid(
                f"Invalid value: '{ptype}'. Supported values are: {allowed}.", f"{loc}.type", "invalid_value"
            )
        required = {
            "text": ("text",),
            "refusal": ("refusal",),
            "image_url": ("image_url", "url"),
            "input_audio": ("input_audio", "data"),
            "file": ("file",),
        }[ptype]
        obj: Any = part
        for key in required:
            obj = obj.get(key) if isinstance(obj, dict) else None
            if obj is None:
                raise Invalid(
                    f"Missing required parameter: '{loc}.{'.'.join(required)}'.",
                    f"{loc}.{'.'.join(required)}",
                    "missing_required_parameter",
                )
        if ptype == "input_audio" and part["input_audio"].get("format") not in {"wav", "mp3"}:
            raise Invalid(
                f"Invalid value: '{part['input_audio'].get('format')}'. Supported values are: 'wav' and 'mp3'.",
                f"{loc}.input_audio.format",
                "invalid_value",
            )


def _validate_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise Invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    pending: list[str] = []  # tool_call ids of the last assistant message not answered yet
    after_tool_calls = False
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in PARTS_BY_ROLE:
            raise Invalid(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.",
                f"messages[{i}].role",
                "invalid_value",
            )
        if role != "tool" and pending:
            raise Invalid(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
                f"messages.[{i}].role",
            )
        if role != "assistant" and "content" not in msg:
            raise Invalid(
                f"Missing required parameter: 'messages[{i}].content'.",
                f"messages[{i}].content",
                "missing_required_parameter",
            )
        _validate_content(i, role, msg.get("content"))
        if role == "tool":
            if not after_tool_calls:
                raise Invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            tid = msg.get("tool_call_id")
            if not isinstance(tid, str):
                raise Invalid(
                    f"Missing required parameter: 'messages[{i}].tool_call_id'.",
                    f"messages[{i}].tool_call_id",
                    "missing_required_parameter",
                )
            if tid not in pending:
                raise Invalid(
                    f"Invalid parameter: 'tool_call_id' of '{tid}' not found in 'tool_calls' of previous message.",
                    f"messages.[{i}].tool_call_id",
                )
            pending.remove(tid)
            continue
        after_tool_calls = False
        if role == "assistant" and msg.get("tool_calls"):
            for j, call in enumerate(msg["tool_calls"]):
                if (
                    not isinstance(call, dict)
                    or not isinstance(call.get("id"), str)
                    or call.get("type", "function") not in {"function", "custom"}
                ):
                    raise Invalid(
                        f"Missing required parameter: 'messages[{i}].tool_calls[{j}].id'.",
                        f"messages[{i}].tool_calls[{j}].id",
                        "missing_required_parameter",
                    )
                pending.append(call["id"])
            after_tool_calls = True
    if pending:
        raise Invalid(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
            "messages",
        )


def validate(body: Any, *, lenient: bool = False) -> None:
    if not isinstance(body, dict):
        raise Invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
        )
    for key in ("model", "messages"):
        if key not in body:
            raise Invalid(f"Missing required parameter: '{key}'.", key, "missing_required_parameter")
    if not lenient:
        for key in body:
            if key not in TOP_LEVEL:
                raise Invalid(f"Unrecognized request argument supplied: {key}")
    _validate_messages(body["messages"])
    for i, tool in enumerate(body.get("tools") or []):
        ttype = tool.get("type") if isinstance(tool, dict) else None
        if ttype not in {"function", "custom"}:
            raise Invalid(
                f"Invalid value: '{ttype}'. Supported values are: 'function' and 'custom'.",
                f"tools[{i}].type",
                "invalid_value",
            )
        if ttype == "function" and not isinstance((tool.get("function") or {}).get("name"), str):
            raise Invalid(
                f"Missing required parameter: 'tools[{i}].function.name'.",
                f"tools[{i}].function.name",
                "missing_required_parameter",
            )
    fmt = body.get("response_format")
    if fmt is not None:
        ftype = fmt.get("type") if isinstance(fmt, dict) else None
        if ftype not in {"text", "json_object", "json_schema"}:
            raise Invalid(
                f"Invalid value: '{ftype}'. Supported values are: 'json_object', 'json_schema', and 'text'.",
                "response_format.type",
                "invalid_value",
            )
        if ftype == "json_schema" and not isinstance((fmt.get("json_schema") or {}).get("name"), str):
            raise Invalid(
                "Missing required parameter: 'response_format.json_schema.name'.",
                "response_format.json_schema.name",
                "missing_required_parameter",
            )
    if body.get("stream_options") is not None and not body.get("stream"):
        raise Invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"
        )


def frame(item: dict[str, Any]) -> bytes:
    data = item["data"]
    return f"data: {data if isinstance(data, str) else dumps(data)}\n\n".encode()


@dataclass
class FakeChat(FakeUpstream):
    provider = "chat"
    lenient: bool = False  # accept unknown top-level fields (vLLM, Ollama, DeepSeek... extensions)

    def build_app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])

    async def _completions(self, request: Request) -> Response:
        rec = await self.record(request)
        injected = self.take_error()
        if injected:
            return error_response(
                injected.status, injected.message, retry_after=injected.retry_after, body=injected.body
            )
        auth = rec.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:]:
            return error_response(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
                "you're accessing the API from your browser and are prompted for a username and password. You can "
                "obtain an API key from https://platform.openai.com/account/api-keys.",
                code=None,
            )
        if auth[7:] != self.api_key:
            return error_response(
                401,
                f"Incorrect API key provided: {auth[7:][:3]}***. You can find your API key at https://platform.openai.com/account/api-keys.",
            )
        try:
            validate(rec.body, lenient=self.lenient)
        except Invalid as exc:
            return error_response(400, str(exc), param=exc.param, code=exc.code)
        model = rec.body["model"]
        transcript = self.transcript(self.pick_scenario(model))
        if transcript is None:
            return error_response(404, f"The model `{model}` does not exist or you do not have access to it.")
        headers = {"x-request-id": "req_" + uuid.uuid4().hex, "openai-processing-ms": "42"}
        if not rec.body.get("stream"):
            return self.replay_json(transcript, dumps(transcript["response"]).encode(), headers)
        include_usage = bool((rec.body.get("stream_options") or {}).get("include_usage"))
        items = []
        for item in transcript["stream"]:
            if item.get("usage_chunk") and not include_usage:
                continue
            if (
                include_usage
                and isinstance(item.get("data"), dict)
                and "choices" in item["data"]
                and not item.get("usage_chunk")
            ):
                item = {**item, "data": {**item["data"], "usage": None}}
            items.append(item)
        return StreamingResponse(
            self.events(items, frame), media_type="text/event-stream; charset=utf-8", headers=headers
        )
