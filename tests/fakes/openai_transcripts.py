"""The OpenAI fake's recorded material: the transcripts (``tests/transcripts/openai/<name>.json``),
the canned HTTP errors (``errors.json``), and ``_Reject``, the OpenAI error response they and the
request checks raise."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

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
