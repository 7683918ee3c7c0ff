"""Pure translation between the contract and OpenAI's Responses wire format (no I/O here).

The request body is the client's request re-encoded by the codec (or, for a REST client's request the
gateway did not change, its own JSON: codec/shadow.py), so every field a client sends, modelled or not,
reaches the upstream; only `model` (the deployment's upstream id) and `stream` change.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf.message import Message

from responses_gateway import codec
from responses_gateway.errors import GatewayError, Reason, upstream_status_reason
from responses_gateway.v1 import events_pb2, request_pb2


def request_body(request: request_pb2.CreateResponseRequest, upstream_model: str, *, stream: bool) -> bytes:
    body: dict[str, Any] = codec.json_of(request)  # a REST client's own JSON of it, when kept
    body["model"] = upstream_model
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    return orjson.dumps(body)


def message_body(message: Message, upstream_model: str | None = None) -> bytes:
    body: dict[str, Any] = codec.to_json(message)
    if upstream_model is not None:
        body["model"] = upstream_model
    return orjson.dumps(body)


def parse_event(data: str, provider: str) -> events_pb2.ResponseStreamEvent:
    try:
        return codec.loads(events_pb2.ResponseStreamEvent(), data)
    except codec.CodecError as e:
        raise GatewayError(
            Reason.UPSTREAM_ERROR, f"{provider} sent an event the gateway cannot read: {e}"
        ) from e


def parse_body(message: Message, raw: bytes, provider: str) -> None:
    try:
        codec.loads(message, raw, keep=True)  # a REST call may send this JSON back as it is
    except codec.CodecError as e:
        raise GatewayError(
            Reason.UPSTREAM_ERROR, f"{provider} sent a body the gateway cannot read: {e}"
        ) from e


def upstream_error(status: int, raw: bytes, provider: str, retry_after: float | None = None) -> GatewayError:
    """An OpenAI-style error body ({"error": {message, type, param, code}}) as a domain error."""
    message, param, code = "", None, None
    try:
        err = orjson.loads(raw).get("error")
        if isinstance(err, dict):
            message = str(err.get("message") or "")
            param = err.get("param") if isinstance(err.get("param"), str) else None
            code = err.get("code") if isinstance(err.get("code"), str) else None
        elif isinstance(err, str):
            message = err
    except (orjson.JSONDecodeError, AttributeError):
        message = raw[:500].decode("utf-8", "replace").strip()
    reason = upstream_status_reason(status)
    if reason == Reason.UPSTREAM_AUTH_FAILED:
        # The upstream's `invalid_api_key` is about the deployment's key, not the caller's.
        param = code = None
    return GatewayError(
        reason,
        f"{provider} returned {status}: {message or 'no message'}",
        param=param,
        code=code,
        retry_after=retry_after,
        upstream_status=status,
    )
