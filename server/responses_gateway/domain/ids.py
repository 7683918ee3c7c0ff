"""Identifiers shaped like OpenAI's (`resp_` + 48 hex digits), so clients that check prefixes work.

The random bytes come from the OS's CSPRNG in blocks: one getrandom call serves ~170 ids instead of
one call per id (system calls are what costs most where the gateway runs sandboxed). Ids are made on
the event loop's thread only.
"""

from __future__ import annotations

import os

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
