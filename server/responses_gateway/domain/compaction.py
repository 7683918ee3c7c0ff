"""The gateway's own compaction, for upstreams without `POST /responses/compact`.

The model is asked for a summary of the conversation; the summary travels back to the client sealed in
a `compaction` item's `encrypted_content` (AES-256-GCM under a server key): opaque to the client and
impossible to forge or edit. When such an item comes back as input, on any provider, the gateway opens
it and hands the upstream the summary as a user message: a conversation may move between providers.
Items the gateway did not seal (OpenAI's own) are left as they are: only OpenAI can read them.

Pure except for the key (from config, else random per process) and the clock.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import time
from typing import TYPE_CHECKING

import orjson

from responses_gateway.contract.ids import new_id
from responses_gateway.contract.items import input_items
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.v1 import items_pb2, request_pb2, response_pb2
from responses_gateway.v1 import responses_service_pb2 as rs

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

# Marks (and versions) the items the gateway sealed; OpenAI's own start otherwise ("gAAAA...").
SEALED_PREFIX = "rgwc1."
_NONCE_BYTES = 12
# The framing the next upstream sees in front of a summary.
SUMMARY_PREAMBLE = "Summary of the conversation so far (earlier turns were compacted):"
SUMMARY_PROMPT = (
    "Compact the conversation above into a summary that lets the conversation continue without it. "
    "Keep the user's goals, requests and constraints, the decisions made, the facts and results "
    "established (tool results included), the current state of the work and what remains to do. "
    "Write it as plain text, in the conversation's language. Reply with the summary only."
)


class Sealer:
    """Seals and opens the summaries of the gateway's compaction items."""

    def __init__(self, secret: bytes | None) -> None:
        """`secret`: the configured key; None draws a random one on first use (and warns then, not at
        start-up: a gateway that never compacts has nothing to warn about)."""
        self._secret = secret
        self._cipher: AESGCM | None = None

    @classmethod
    def from_setting(cls, configured: str | None) -> Sealer:
        return cls(configured.encode() if configured else None)

    @property
    def _aead(self) -> AESGCM:
        if self._cipher is None:
            # cryptography loads with the first compaction item, not in every gateway process.
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            secret = self._secret
            if secret is None:
                log.warning(
                    "gateway_settings.compaction_key is not set: compaction items are sealed with a random "
                    "key of this process, so they do not survive a restart and other replicas refuse them"
                )
                secret = os.urandom(32)
            # HKDF: the configured key may be any string; the cipher gets a uniform 256-bit key.
            key = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"responses-gateway compaction v1"
            ).derive(secret)
            self._cipher = AESGCM(key)
        return self._cipher

    def seal(self, summary: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        payload = orjson.dumps({"summary": summary, "created_at": int(time.time())})
        sealed = self._aead.encrypt(nonce, payload, SEALED_PREFIX.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, content: str) -> str:
        """The summary in `content` (one of ours); a 400 when it was altered or sealed with another key."""
        from cryptography.exceptions import InvalidTag

        body = content.removeprefix(SEALED_PREFIX)
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            payload = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], SEALED_PREFIX.encode())
            summary = orjson.loads(payload)["summary"]
        except (binascii.Error, ValueError, InvalidTag, KeyError, TypeError, orjson.JSONDecodeError):
            summary = None
        if not isinstance(summary, str):
            raise GatewayError(
                Reason.INVALID_REQUEST,
                "Invalid compaction item: its encrypted_content was altered, or was not made by this "
                "gateway (or by one with the same compaction_key).",
                param="input",
            )
        return summary


def is_sealed(item: items_pb2.Item) -> bool:
    """A compaction item the gateway made (or one claiming to be)."""
    return item.WhichOneof("kind") == "compaction" and item.compaction.encrypted_content.startswith(
        SEALED_PREFIX
    )


def summary_message(summary: str) -> items_pb2.Item:
    item = items_pb2.Item()
    item.message.role = items_pb2.MESSAGE_ROLE_USER
    item.message.content.parts.parts.add().input_text.text = f"{SUMMARY_PREAMBLE}\n\n{summary}"
    return item


def open_items(items: list[items_pb2.Item], sealer: Sealer) -> list[items_pb2.Item] | None:
    """`items` with each of the gateway's compaction items replaced by its summary as a user message;
    None when there is none (nothing to copy). A forged or altered one is a 400."""
    if not any(is_sealed(i) for i in items):
        return None
    return [
        summary_message(sealer.open(i.compaction.encrypted_content)) if is_sealed(i) else i for i in items
    ]


def open_input(
    request: request_pb2.CreateResponseRequest, sealer: Sealer
) -> request_pb2.CreateResponseRequest:
    """The request as an upstream should see it: the gateway's compaction items opened (a copy when
    there are any; the request itself otherwise)."""
    if request.input.WhichOneof("kind") != "items":
        return request
    opened = open_items(list(request.input.items.items), sealer)
    if opened is None:
        return request
    out = request_pb2.CreateResponseRequest()
    out.CopyFrom(request)
    out.input.items.ClearField("items")
    out.input.items.items.extend(opened)
    return out


def summary_request(
    items: list[items_pb2.Item], request: rs.CompactResponseRequest
) -> request_pb2.CreateResponseRequest:
    """The create request that asks the model for the summary: the conversation (compaction items
    already opened), then the ask as the last user turn; the client's instructions stay the system."""
    out = request_pb2.CreateResponseRequest(model=request.model, store=False)
    if request.HasField("instructions"):
        out.instructions = request.instructions
    out.input.items.items.extend(items)
    ask = out.input.items.items.add()
    ask.message.role = items_pb2.MESSAGE_ROLE_USER
    ask.message.content.parts.parts.add().input_text.text = SUMMARY_PROMPT
    return out


def output_text(response: response_pb2.Response) -> str:
    """The text of the assistant messages of a (folded) response."""
    texts = []
    for item in response.output:
        if item.WhichOneof("kind") != "message":
            continue
        for part in item.message.content.parts.parts:
            if part.WhichOneof("kind") == "output_text":
                texts.append(part.output_text.text)
    return "".join(texts).strip()


def compacted(summary: str, usage: response_pb2.Usage, sealer: Sealer) -> rs.CompactResponseResponse:
    """The `response.compaction` object: one compaction item holding the sealed summary."""
    if not summary:
        raise GatewayError(Reason.UPSTREAM_ERROR, "The model returned an empty summary.")
    out = rs.CompactResponseResponse(
        id=new_id("resp"), object="response.compaction", created_at=int(time.time())
    )
    item = out.output.add()
    item.compaction.id = new_id("cmp")
    item.compaction.encrypted_content = sealer.seal(summary)
    out.usage.CopyFrom(usage)
    # Both details objects are required by the spec's ResponseUsage.
    out.usage.input_tokens_details.SetInParent()
    out.usage.output_tokens_details.SetInParent()
    if not out.usage.total_tokens:
        out.usage.total_tokens = out.usage.input_tokens + out.usage.output_tokens
    return out


def request_items(request: rs.CompactResponseRequest | rs.CountInputTokensRequest) -> list[items_pb2.Item]:
    """`input` as items (a string is one user message)."""
    as_create = request_pb2.CreateResponseRequest()
    as_create.input.CopyFrom(request.input)
    return input_items(as_create)
