"""Alternating conversation turns for APIs that refuse two messages of one role in a row (Anthropic's
Messages, Bedrock's Converse): blocks of consecutive items with one role share a message."""

from __future__ import annotations

from typing import Any


class Turns:
    def __init__(self) -> None:
        self.turns: list[dict[str, Any]] = []

    def add(self, role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if self.turns and self.turns[-1]["role"] == role:
            self.turns[-1]["content"].extend(blocks)
        else:
            self.turns.append({"role": role, "content": list(blocks)})
