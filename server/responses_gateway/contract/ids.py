"""Identifiers shaped like OpenAI's (`resp_` + 48 hex digits), so clients that check prefixes work,
and the checks every id a client sends passes before it reaches a store or an upstream URL.

The random bytes come from the OS's CSPRNG in blocks: one getrandom call serves ~170 ids instead of
one call per id (system calls are what costs most where the gateway runs sandboxed). Ids are made on
the event loop's thread only.
"""

from __future__ import annotations

import os
import re

from responses_gateway.errors import GatewayError, Reason, echo

_BLOCK = 4096
_ID_BYTES = 24
_pool = b""
_pos = 0


def new_id(prefix: str) -> str:
    global _pool, _pos
    if _pos + _ID_BYTES > len(_pool):
        _pool, _pos = os.urandom(_BLOCK), 0
    chunk = _pool[_pos : _pos + _ID_BYTES]
    _pos += _ID_BYTES
    return f"{prefix}_{chunk.hex()}"


# What an id taken from a client may look like before it goes near a store or an upstream URL: the
# gateway's own ids and OpenAI's (`resp_` + hex), and any id with the same strict alphabet. The bound
# keeps error messages, log lines and URLs short.
_ID_CHARS = re.compile(r"[A-Za-z0-9_-]{1,128}")


def check_response_id(value: str, param: str = "response_id") -> str:
    """`value` if it can be a response id, else an INVALID_REQUEST naming `param` (as OpenAI answers)."""
    if not (value.startswith("resp_") and _ID_CHARS.fullmatch(value)):
        raise GatewayError(
            Reason.INVALID_REQUEST,
            f"Invalid '{param}': '{echo(value)}'. Expected an ID that begins with 'resp_' followed by "
            "at most 123 letters, digits, '_' or '-'.",
            param=param,
        )
    return value


def check_item_id(value: str, param: str) -> str:
    """An item id a client names (e.g. input_items' `after`): the same strict alphabet and bound."""
    if not _ID_CHARS.fullmatch(value):
        raise GatewayError(
            Reason.INVALID_REQUEST,
            f"Invalid '{param}': '{echo(value)}'. Expected an item ID of at most 128 letters, digits, "
            "'_' or '-'.",
            param=param,
        )
    return value
