"""Grammar checks for custom tools on providers that cannot constrain a model's output to a grammar.

OpenAI samples a grammar-constrained custom tool's input from the grammar itself; elsewhere the model
writes free text, so the gateway checks it before it hands the call on: `lark` grammars with the lark
library (Earley, so any context-free grammar OpenAI accepts parses), `regex` ones with `re.fullmatch`.
Compiling happens while the request is translated, so a grammar that does not compile is a 400 before
anything is sent upstream; compiled grammars are cached by their text (agents send the same tools on
every turn).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from responses_gateway.errors import GatewayError, Reason

if TYPE_CHECKING:
    import lark

Syntax = Literal["lark", "regex"]
# Enough for the tools of a few agents; a grammar is small next to a request.
_CACHE = 128


@dataclass(frozen=True)
class Grammar:
    syntax: Syntax
    definition: str


class GrammarMismatch(Exception):
    """The input does not match; the message says where (lark's own description of the position)."""


@functools.lru_cache(maxsize=_CACHE)
def _lark(definition: str) -> lark.Lark:
    import lark  # loaded by the first lark grammar (~15 MB a gateway without one does not hold)

    return lark.Lark(definition, start="start", parser="earley")


def _lark_error() -> type[Exception]:
    from lark.exceptions import LarkError

    return LarkError


@functools.lru_cache(maxsize=_CACHE)
def _regex(definition: str) -> re.Pattern[str]:
    return re.compile(definition)


def compile_grammar(grammar: Grammar, tool: str) -> None:
    """Raise a 400 naming `tool` when its grammar does not compile."""
    failures = (_lark_error(), re.error) if grammar.syntax == "lark" else (re.error,)
    try:
        if grammar.syntax == "lark":
            _lark(grammar.definition)
        else:
            _regex(grammar.definition)
    except failures as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GatewayError(
            Reason.INVALID_REQUEST,
            f"The {grammar.syntax} grammar of custom tool `{tool}` does not compile: {first[:300]}",
            param="tools",
        ) from e


def check(grammar: Grammar, text: str) -> None:
    """Raise GrammarMismatch unless the whole of `text` matches `grammar` (compiled already)."""
    if grammar.syntax == "regex":
        if _regex(grammar.definition).fullmatch(text) is None:
            raise GrammarMismatch("the input does not fully match the pattern")
        return
    try:
        _lark(grammar.definition).parse(text)
    except _lark_error() as e:
        lines = [line for line in str(e).strip().splitlines() if line.strip()]
        raise GrammarMismatch(lines[0][:300] if lines else type(e).__name__) from e
