#!/usr/bin/env python3
"""Write the blocking Python client (`_sync.py`) from the asyncio one (`_async.py`).

    scripts/unasync.py                      write _sync.py
    scripts/unasync.py --check              exit 1, with a diff, if _sync.py is not what _async.py gives
    scripts/unasync.py --source A --target S [--check]   other files (the tests use copies)

`make generate` runs it, `make check-generate` runs it with --check (both through scripts/generate.sh).

The transform is the unasync approach (httpcore's scripts/unasync.py): regex substitutions, line by
line (`async def` -> `def`, `await x` -> `x`, `AsyncResponsesClient` -> `ResponsesClient`, grpc.aio ->
grpc, ...; see RULES). What no substitution can express is marked in _async.py:

    import asyncio  # unasync: async-only      this line is left out of _sync.py

    # unasync: async-only                       these lines are left out of _sync.py
    ...
    # unasync: sync-only                        these commented lines go into _sync.py, uncommented
    # ...                                       (one `# ` stripped after the marker's indentation)
    # unasync: end

The result goes through the project's ruff (isort + format): the substitutions shorten lines and
rename imports, and _sync.py must pass the same `ruff format --check` as hand-written code. Two
checks keep the rules honest: a rule that matches nothing fails (it is stale), and so does async
residue left in the output (`await`, `grpc.aio`, ...: a construct no rule covers yet).
"""

from __future__ import annotations

import argparse
import difflib
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "clients/python/src/responses_gateway/client"
SOURCE = CLIENT / "_async.py"
TARGET = CLIENT / "_sync.py"

# (pattern, replacement), applied in order to every line outside sync-only blocks.
RULES: tuple[tuple[str, str], ...] = (
    # Names: AsyncResponsesClient, AsyncResponseStream, AsyncIterator -> their blocking twins.
    (r"\bAsync([A-Z]\w*)", r"\1"),
    (r"\bStopAsyncIteration\b", "StopIteration"),
    (r"(\w)AsyncStub\b", r"\1Stub"),  # ResponsesServiceAsyncStub -> ResponsesServiceStub
    (r"\basync (def|for|with)\b", r"\1"),
    (r"\bawait ", ""),
    (r"\b__a(enter|exit|iter|next)__\b", r"__\1__"),
    (r"\ba(iter|next)\(", r"\1("),
    (
        r"\bgrpc\.aio\.(Channel|insecure_channel|secure_channel|UnaryUnaryMultiCallable|UnaryStreamMultiCallable)\b",
        r"grpc.\1",
    ),
    # A blocking unary-stream call is an iterator of responses (no request type parameter).
    (r"\bgrpc\.aio\.UnaryStreamCall\[Any, (\w+)\]", r"grpc.CallIterator[\1]"),
    # Docstrings.
    (r"\basyncio client\b", "blocking client"),
    (r"; not a coroutine\b", ""),
)
COMPILED = tuple((re.compile(pattern), repl) for pattern, repl in RULES)

# What must not survive into _sync.py: a sign that some construct has no rule yet.
RESIDUE = re.compile(
    r"\b(async|await|asyncio|aiter|anext|StopAsyncIteration)\b|\bgrpc\.aio\b|__a(enter|exit|iter|next)__|\bAsync[A-Z]"
)
MARKER = re.compile(r"^(?P<indent>\s*)# unasync: (?P<what>async-only|sync-only|end)\s*$")
LINE_PRAGMA = re.compile(r"\s*# unasync: async-only\s*$")


class UnasyncError(Exception):
    """_async.py cannot be transformed (bad markers, async residue, a stale rule)."""


def header(source_name: str) -> str:
    return (
        f"# Generated from {source_name} by scripts/unasync.py (`make generate`); do not edit:\n"
        f"# edit {source_name} and regenerate. `make check-generate` fails when this file is stale.\n"
    )


def unasync(source: str, source_name: str = "_async.py", used: set[int] | None = None) -> str:
    """The blocking twin of `source`, not yet formatted; `used` collects the indexes of the rules that matched."""
    out: list[str] = []
    block: str | None = None  # "async-only" / "sync-only" while inside one
    block_indent = ""
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        where = f"{source_name}:{number}"
        marker = MARKER.match(line)
        if marker:
            what = marker["what"]
            if what == "end":
                if block is None:
                    raise UnasyncError(f"{where}: `# unasync: end` outside a block")
                block = None
            elif block == what:
                raise UnasyncError(f"{where}: `# unasync: {what}` repeated inside its own block")
            else:
                block, block_indent = what, marker["indent"]
            continue
        if block == "async-only" or LINE_PRAGMA.search(line):
            continue
        if "# unasync:" in line:  # a misspelt marker would otherwise pass as a plain comment
            raise UnasyncError(f"{where}: unknown marker {line.strip()!r}")
        if block == "sync-only":
            out.append(uncomment(line, block_indent, where))
            continue
        for index, (pattern, repl) in enumerate(COMPILED):
            line, count = pattern.subn(repl, line)
            if count and used is not None:
                used.add(index)
        residue = RESIDUE.search(line)
        if residue:
            raise UnasyncError(
                f"{where}: {residue[0]!r} is left in the sync code ({line.strip()!r}): "
                "add a rule to scripts/unasync.py or mark the line async-only"
            )
        out.append(line)
    if block is not None:
        raise UnasyncError(f"{source_name}: `# unasync: {block}` block is not closed by `# unasync: end`")
    return header(source_name) + "".join(out)


def uncomment(line: str, indent: str, where: str) -> str:
    """A sync-only line: `<indent># code` -> `<indent>code` (`<indent>#` alone is a blank line)."""
    body = line.rstrip("\r\n")
    if body == indent + "#":
        return "\n"
    if not body.startswith(indent + "# "):
        raise UnasyncError(f"{where}: a sync-only line must be `{indent}# <code>`, got {body!r}")
    return indent + body[len(indent) + 2 :] + "\n"


def ruff(args: Sequence[str], code: str, filename: Path) -> str:
    """`code` passed through `ruff <args>` with the project's configuration."""
    cmd = [sys.executable, "-m", "ruff", *args, "--config", str(ROOT / "pyproject.toml")]
    cmd += ["--stdin-filename", str(filename), "-"]
    done = subprocess.run(cmd, input=code, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise UnasyncError(f"{' '.join(args)} failed on the generated code:\n{done.stderr.strip()}")
    return done.stdout


def generate(source: Path, target: Path) -> str:
    """The text `target` should have: `source` unasynced, import-sorted and formatted."""
    used: set[int] = set()
    code = unasync(source.read_text(), source.name, used)
    unused = [RULES[i][0] for i in range(len(RULES)) if i not in used]
    if unused:
        raise UnasyncError(f"rules matched nothing in {source.name} (remove them): {unused}")
    code = ruff(["check", "--fix-only", "--select", "I"], code, target)
    return ruff(["format"], code, target)


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def stale_report(source: Path, target: Path, actual: str | None, expected: str) -> str:
    """What --check prints when `target` is not what `source` gives: which file, a diff, the fix."""
    diff = list(
        difflib.unified_diff(
            (actual or "").splitlines(keepends=True),
            expected.splitlines(keepends=True),
            "committed",
            "expected",
        )
    )
    shown_diff = "".join(f"  {line.rstrip()}\n" for line in diff[:80])
    if len(diff) > 80:
        shown_diff += f"  ... {len(diff) - 80} more diff lines\n"
    missing = " (it is missing)" if actual is None else ""
    return (
        f"unasync: {shown(target)} is stale{missing}: it is not what scripts/unasync.py makes from "
        f"{shown(source)}.\n{shown_diff}"
        f"unasync: edit {source.name}, not {target.name}; then run 'make generate' and commit both.\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write _sync.py from _async.py (see the module docstring).")
    parser.add_argument("--check", action="store_true", help="fail if the target is stale; write nothing")
    parser.add_argument("--source", type=Path, default=SOURCE, help="the asyncio module")
    parser.add_argument("--target", type=Path, default=TARGET, help="the blocking module it gives")
    args = parser.parse_args(argv)
    source: Path = args.source.resolve()
    target: Path = args.target.resolve()
    try:
        expected = generate(source, target)
    except UnasyncError as e:
        print(f"unasync: {e}", file=sys.stderr)
        return 1
    actual = target.read_text() if target.exists() else None
    if args.check:
        if actual != expected:
            sys.stderr.write(stale_report(source, target, actual, expected))
            return 1
        print(f"unasync: {shown(target)} is up to date with {shown(source)}")
    else:
        if actual != expected:
            target.write_text(expected)
        print(f"unasync: wrote {shown(target)} from {shown(source)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
