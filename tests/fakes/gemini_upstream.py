"""Fake Gemini API (Google AI, ``generativelanguage``) on loopback, fed from recorded transcripts.

    POST {base}/v1beta/models/{model}:generateContent
    POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse   (SSE ``data: <json>\\r\\n\\r\\n``)
    POST {base}/v1beta/models/{model}:streamGenerateContent           (without alt=sse: one JSON array)

The key comes as ``x-goog-api-key`` or ``?key=``. The REST API parses request JSON the proto3 way, so
fields are accepted in lowerCamelCase (as the SDK sends them) or in their snake_case proto names.
See ``tests/fakes/transcripts.py`` for the control API and scenario selection (``scenario-<name>`` as
model; scenarios are the files of ``tests/transcripts/gemini/``).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.transcripts import FakeUpstream, dumps, word_count, word_set

STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
TOP_LEVEL = word_set(
    "contents systemInstruction tools toolConfig safetySettings generationConfig cachedContent model"
)
GENERATION_CONFIG = word_set(
    "stopSequences responseMimeType responseSchema responseJsonSchema _responseJsonSchema "
    "responseModalities candidateCount maxOutputTokens temperature topP topK seed presencePenalty "
    "frequencyPenalty responseLogprobs logprobs enableEnhancedCivicAnswers speechConfig "
    "thinkingConfig imageConfig mediaResolution"
)
THINKING_CONFIG = {"includeThoughts", "thinkingBudget", "thinkingLevel"}
PART_DATA = word_set(
    "text inlineData fileData functionCall functionResponse executableCode codeExecutionResult"
)
PART_META = {"thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution"}
TOOL_KINDS = word_set(
    "functionDeclarations googleSearch googleSearchRetrieval codeExecution urlContext fileSearch "
    "computerUse googleMaps"
)
FUNCTION_DECLARATION = word_set(
    "name description parameters parametersJsonSchema response responseJsonSchema behavior"
)
FUNCTION_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}$")
COUNT_SKIP = frozenset({"role", "name", "id", "thoughtSignature", "mimeType", "type"})
JSON_MIME_TYPES = {"application/json", "text/x.enum"}


class Invalid(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _norm(obj: Any, loc: str, allowed: AbstractSet[str]) -> dict[str, Any]:
    """Keys camel-cased; an unknown key is rejected the way Google's JSON parser rejects it."""
    if not isinstance(obj, dict):
        raise Invalid(f"Invalid JSON payload received. Expected an object at '{loc}'.", loc)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        ckey = key if key.startswith("_") else _camel(key)
        if ckey not in allowed:
            where = f" at '{loc}'" if loc else ""
            raise Invalid(
                f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.', loc
            )
        out[ckey] = value
    return out


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _validate_part(loc: str, part: Any) -> dict[str, Any]:
    p = _norm(part, loc, PART_DATA | PART_META)
    kinds = [k for k in p if k in PART_DATA]
    if len(kinds) != 1:
        raise Invalid(
            f"* GenerateContentRequest.{loc}.data: required oneof field 'data' must have one initialized field\n"
        )
    kind = kinds[0]
    if kind == "text" and not isinstance(p["text"], str):
        raise Invalid(f"Invalid value at '{loc}.text' (TYPE_STRING)", loc)
    if kind == "inlineData":
        blob = _norm(p["inlineData"], f"{loc}.inline_data", {"mimeType", "data", "displayName"})
        if not blob.get("mimeType") or not isinstance(blob.get("data"), str):
            raise Invalid(
                f"* GenerateContentRequest.{loc}.inline_data.mime_type: a mime type and data are required\n"
            )
    if kind == "fileData":
        fd = _norm(p["fileData"], f"{loc}.file_data", {"mimeType", "fileUri", "displayName"})
        if not fd.get("fileUri"):
            raise Invalid(f"* GenerateContentRequest.{loc}.file_data.file_uri: file_uri is required\n")
    if kind == "functionCall":
        fc = _norm(p["functionCall"], f"{loc}.function_call", {"id", "name", "args"})
        if not fc.get("name"):
            raise Invalid(f"* GenerateContentRequest.{loc}.function_call.name: Name cannot be empty.\n")
    if kind == "functionResponse":
        fr = _norm(
            p["functionResponse"],
            f"{loc}.function_response",
            {"id", "name", "response", "parts", "willContinue", "scheduling"},
        )
        if not fr.get("name"):
            raise Invalid(f"* GenerateContentRequest.{loc}.function_response.name: Name cannot be empty.\n")
        if not isinstance(fr.get("response"), dict):
            raise Invalid(
                f"* GenerateContentRequest.{loc}.function_response.response: response must be a JSON object\n"
            )
    if "thought" in p and not isinstance(p["thought"], bool):
        raise Invalid(f"Invalid value at '{loc}.thought' (TYPE_BOOL)", loc)
    return {"kind": kind}


def _validate_content(loc: str, content: Any, roles: set[str]) -> list[str]:
    c = _norm(content, loc, {"role", "parts"})
    role = c.get("role", "user")
    if role not in roles:
        raise Invalid("Please use a valid role: user, model.")
    parts = c.get("parts")
    if not isinstance(parts, list) or not parts:
        raise Invalid(f"* GenerateContentRequest.{loc}.parts: contents.parts must not be empty.\n")
    return [role] + [_validate_part(f"{loc}.parts[{i}]", part)["kind"] for i, part in enumerate(parts)]


def validate(body: Any) -> None:
    req = _norm(body, "", TOP_LEVEL)
    contents = req.get("contents")
    if not contents:
        raise Invalid("* GenerateContentRequest.contents: contents is not specified\n")
    if not isinstance(contents, list):
        raise Invalid(
            "Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), expected a list",
            "contents",
        )
    turns = [_validate_content(f"contents[{i}]", c, {"user", "model"}) for i, c in enumerate(contents)]
    _check_function_turns(turns)
    if "systemInstruction" in req:
        _validate_content("system_instruction", req["systemInstruction"], {"user", "model", "system"})
    if "generationConfig" in req:
        _validate_generation_config(_norm(req["generationConfig"], "generation_config", GENERATION_CONFIG))
    for i, tool in enumerate(req.get("tools") or []):
        t = _norm(tool, f"tools[{i}]", TOOL_KINDS)
        for j, fd in enumerate(t.get("functionDeclarations") or []):
            decl = _norm(fd, f"tools[{i}].function_declarations[{j}]", FUNCTION_DECLARATION)
            if not FUNCTION_NAME.match(decl.get("name") or ""):
                raise Invalid(
                    f"* GenerateContentRequest.tools[{i}].function_declarations[{j}].name: Invalid function name. Must start "
                    "with a letter or an underscore. Must be a-z, A-Z, 0-9, or contain underscores, dots, colons and dashes, "
                    "with a maximum length of 128.\n"
                )
            if "parameters" in decl and "parametersJsonSchema" in decl:
                raise Invalid(
                    f"* GenerateContentRequest.tools[{i}].function_declarations[{j}]: parameters and parameters_json_schema cannot both be set\n"
                )


def _check_function_turns(turns: list[list[str]]) -> None:
    for i, turn in enumerate(turns):
        role, kinds = turn[0], turn[1:]
        if "functionResponse" in kinds:
            prev = turns[i - 1] if i else None
            if prev is None or prev[0] != "model" or "functionCall" not in prev[1:]:
                raise Invalid(
                    "Please ensure that function response turn comes immediately after a function call turn."
                )
            if kinds.count("functionResponse") != prev[1:].count("functionCall"):
                raise Invalid(
                    "Please ensure that the number of function response parts is equal to the number of function call "
                    "parts of the function call turn."
                )
        if role == "model" and "functionCall" in kinds and i and turns[i - 1][0] != "user":
            raise Invalid(
                "Please ensure that function call turn comes immediately after a user turn or after a function response turn."
            )


def _validate_generation_config(gc: dict[str, Any]) -> None:
    loc = "GenerateContentRequest.generation_config"
    if "responseSchema" in gc and "responseJsonSchema" in gc:
        raise Invalid(
            f"* {loc}.response_schema: response_schema and response_json_schema cannot both be set\n"
        )
    has_schema = "responseSchema" in gc or "responseJsonSchema" in gc or "_responseJsonSchema" in gc
    if has_schema and gc.get("responseMimeType") not in JSON_MIME_TYPES:
        raise Invalid(
            f"* {loc}.response_mime_type: response_mime_type must be application/json when a response schema is set\n"
        )
    for key in ("candidateCount", "maxOutputTokens", "topK", "seed"):
        if key in gc and not isinstance(gc[key], int):
            raise Invalid(
                f"Invalid value at 'generation_config.{_snake(key)}' (TYPE_INT32), {json.dumps(gc[key])}",
                f"generation_config.{_snake(key)}",
            )
    if "temperature" in gc and not (
        isinstance(gc["temperature"], (int, float)) and 0 <= gc["temperature"] <= 2
    ):
        raise Invalid(f"* {loc}.temperature: temperature must be between 0 and 2\n")
    if "thinkingConfig" in gc:
        tc = _norm(gc["thinkingConfig"], "generation_config.thinking_config", THINKING_CONFIG)
        if "thinkingBudget" in tc and "thinkingLevel" in tc:
            raise Invalid("You can only set either thinking budget or thinking level, not both.")
        if "thinkingLevel" in tc and str(tc["thinkingLevel"]).upper() not in {
            "MINIMAL",
            "LOW",
            "MEDIUM",
            "HIGH",
        }:
            raise Invalid(
                f"Invalid value at 'generation_config.thinking_config.thinking_level', \"{tc['thinkingLevel']}\""
            )


def error_response(
    status: int,
    message: str | None = None,
    *,
    retry_after: int | None = None,
    body: Any = None,
    details: list[Any] | None = None,
) -> Response:
    """An error in Google's shape: ``{"error":{"code","message","status"[,"details"]}}``."""
    if body is None:
        err: dict[str, Any] = {
            "code": status,
            "message": message or DEFAULT_MESSAGES.get(status, "Error"),
            "status": STATUS.get(status, "UNKNOWN"),
        }
        if status == 429 and retry_after is not None and details is None:
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"}]
        if details:
            err["details"] = details
        body = {"error": err}
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    return Response(
        json.dumps(body, indent=2),
        status_code=status,
        headers=headers,
        media_type="application/json; charset=UTF-8",
    )


def _field_violation(field: str, description: str) -> list[Any]:
    return [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": field, "description": description}],
        }
    ]


def _key_invalid() -> list[Any]:
    return [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
    ]


def frame_sse(item: dict[str, Any]) -> bytes:
    return f"data: {dumps(item['data'])}\r\n\r\n".encode()


@dataclass
class FakeGemini(FakeUpstream):
    provider = "gemini"

    def build_app(self) -> Starlette:
        return Starlette(routes=[Route("/{version:str}/models/{target:str}", self._models, methods=["POST"])])

    async def _models(self, request: Request) -> Response:
        rec = await self.record(request)
        injected = self.take_error()
        if injected:
            return error_response(
                injected.status, injected.message, retry_after=injected.retry_after, body=injected.body
            )
        model, _, method = request.path_params["target"].partition(":")
        if request.path_params["version"] not in {"v1beta", "v1"} or method not in {
            "generateContent",
            "streamGenerateContent",
            "countTokens",
        }:
            return error_response(404, f"Method not found: {method or request.path_params['target']}")
        key = rec.headers.get("x-goog-api-key") or rec.query.get("key")
        if not key:
            return error_response(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key "
                "or other form of API consumer identity to call this API.",
            )
        if key != self.api_key:
            return error_response(
                400, "API key not valid. Please pass a valid API key.", details=_key_invalid()
            )
        if rec.body is None:
            return error_response(400, "Invalid JSON payload received. Unexpected end of string.")
        if method == "countTokens":
            return self._count_tokens(rec.body)
        try:
            validate(rec.body)
        except Invalid as exc:
            details = _field_violation(exc.field, str(exc)) if exc.field is not None else None
            return error_response(400, str(exc), details=details)
        transcript = self.transcript(self.pick_scenario(model))
        if transcript is None:
            return error_response(
                404,
                f"models/{model} is not found for API version {request.path_params['version']}, or is not supported for "
                f"{method}. Call ListModels to see the list of available models and their supported methods.",
            )
        if method == "generateContent":
            body = json.dumps(transcript["response"], indent=2, ensure_ascii=False).encode()
            return self.replay_json(transcript, body, {"content-type": "application/json; charset=UTF-8"})
        if rec.query.get("alt") == "sse":
            return StreamingResponse(
                self.events(transcript["stream"], frame_sse), media_type="text/event-stream"
            )
        return StreamingResponse(
            self._json_array(transcript["stream"]), media_type="application/json; charset=UTF-8"
        )

    def _count_tokens(self, body: Any) -> Response:
        """`{"totalTokens": N}` for `contents` or a whole `generateContentRequest` (N: the words of its
        texts), with the generateContent checks; both at once is refused, as Google does."""
        if not isinstance(body, dict) or set(body) - {"contents", "generateContentRequest"}:
            return error_response(400, "Invalid JSON payload received. Unknown name in countTokens.")
        if "contents" in body and "generateContentRequest" in body:
            return error_response(400, "contents and generate_content_request are mutually exclusive.")
        inner = body.get("generateContentRequest", {"contents": body.get("contents", [])})
        try:
            validate(inner)
        except Invalid as exc:
            details = _field_violation(exc.field, str(exc)) if exc.field is not None else None
            return error_response(400, str(exc), details=details)
        if "generateContentRequest" in body and not str(inner.get("model", "")).startswith("models/"):
            return error_response(400, "generate_content_request.model is required (models/{model}).")
        counted = {k: v for k, v in inner.items() if k in ("contents", "systemInstruction", "tools")}
        total = word_count(counted, COUNT_SKIP)
        return Response(
            json.dumps(
                {"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}
            ),
            media_type="application/json; charset=UTF-8",
        )

    async def _json_array(self, items: list[dict[str, Any]]) -> AsyncIterator[bytes]:
        first = True

        def frame(item: dict[str, Any]) -> bytes:
            nonlocal first
            prefix, first = ("[" if first else ",\r\n"), False
            return (prefix + json.dumps(item["data"], indent=2, ensure_ascii=False)).encode()

        async for chunk in self.events(items, frame):
            yield chunk
        yield b"]" if not first else b"[]"
