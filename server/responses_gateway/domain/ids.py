"""Identifiers shaped like OpenAI's (`resp_` + 48 hex digits), so clients that check prefixes work."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"
