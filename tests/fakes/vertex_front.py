"""Vertex AI's surface over the Gemini and Anthropic fakes: its URLs, its Bearer auth, Claude's body.

    POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:streamGenerateContent
    POST /v1/projects/{project}/locations/{location}/publishers/anthropic/models/{model}:streamRawPredict
    POST /v1/projects/{project}/locations/{location}/publishers/anthropic/models/count-tokens:rawPredict

Each request must carry `Authorization: Bearer <token>` with a token the fake OAuth endpoint issued and
that has not expired (or one of `static_tokens`: a raw `api_key` token); else Google's 401. Claude's
body must have `anthropic_version: "vertex-2023-10-16"` and no `model` (Vertex's 400 otherwise). What
passes is recorded (`seen`) and handed on to the provider fake in its own wire format (Gemini's
`x-goog-api-key` path, Anthropic's `/v1/messages` with the model put back in the body), so their
validation and transcripts serve it unchanged. Claude model ids here are `claude-<scenario model>`
(Vertex routes `claude-*` to Anthropic): the prefix is taken off for the Anthropic fake.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.google_oauth import FakeGoogleOAuth

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
_PATH = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/(?P<publisher>[^/]+)"
    r"/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$"
)


async def _reply(send: Any, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def _google_error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


@dataclass
class VertexFront:
    oauth: FakeGoogleOAuth
    gemini: FakeGemini
    anthropic: FakeAnthropic
    static_tokens: set[str] = field(default_factory=set)
    seen: list[dict[str, Any]] = field(default_factory=list)

    def reset(self) -> None:
        self.seen.clear()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        match = _PATH.match(scope["path"])
        if match is None:
            await _reply(send, 404, _google_error(404, "NOT_FOUND", f"Unknown path {scope['path']}"))
            return
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        if not (token in self.static_tokens or self.oauth.valid(token)) or "x-goog-api-key" in headers:
            await _reply(
                send,
                401,
                _google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
            )
            return
        parsed = json.loads(body) if body else None
        self.seen.append(
            {**match.groupdict(), "query": scope["query_string"].decode(), "headers": headers, "body": parsed}
        )
        route = (match["publisher"], match["method"])
        if route == ("google", "streamGenerateContent") or route == ("google", "countTokens"):
            path = f"/v1beta/models/{match['model']}:{match['method']}"
            inner_headers = [(b"x-goog-api-key", self.gemini.api_key.encode())]
            await self._forward(self.gemini.app, scope, path, inner_headers, body, send, receive)
            return
        if match["publisher"] == "anthropic" and match["method"] in ("streamRawPredict", "rawPredict"):
            if not isinstance(parsed, dict) or parsed.get("anthropic_version") != VERTEX_ANTHROPIC_VERSION:
                await _reply(send, 400, _google_error(400, "INVALID_ARGUMENT", "anthropic_version: required"))
                return
            inner = {k: v for k, v in parsed.items() if k != "anthropic_version"}
            if match["model"] == "count-tokens":
                path = "/v1/messages/count_tokens"
            elif "model" in parsed:
                await _reply(send, 400, _google_error(400, "INVALID_ARGUMENT", "model: Extra inputs"))
                return
            else:
                path, inner["model"] = "/v1/messages", match["model"].removeprefix("claude-")
            inner_headers = [
                (b"x-api-key", self.anthropic.api_key.encode()),
                (b"anthropic-version", b"2023-06-01"),
            ]
            if "anthropic-beta" in headers:
                inner_headers.append((b"anthropic-beta", headers["anthropic-beta"].encode()))
            raw = json.dumps(inner).encode()
            await self._forward(self.anthropic.app, scope, path, inner_headers, raw, send, receive)
            return
        await _reply(send, 404, _google_error(404, "NOT_FOUND", f"Unknown method {match['method']}"))

    async def _forward(
        self,
        app: Any,
        scope: dict[str, Any],
        path: str,
        auth: list[tuple[bytes, bytes]],
        body: bytes,
        send: Any,
        outer_receive: Any,
    ) -> None:
        headers = [(b"content-type", b"application/json"), *auth]
        inner = {**scope, "path": path, "raw_path": path.encode(), "headers": headers}
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:  # the body was read: what comes next is the real client's disconnect
                return dict(await outer_receive())
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(inner, receive, send)
