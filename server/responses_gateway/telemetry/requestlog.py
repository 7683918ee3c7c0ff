"""The request log: one JSON line per response on the `responses_gateway.requests` logger.

Its own handler (stderr, the bare message) so each line is JSON a log shipper reads as is, whatever
the format of the gateway's other logs; `propagate` is off so it is not printed twice.

While that handler is still the logger's only one, as `configure` left it, a line is written to its
stream directly: the same bytes `log.info` would write, without a LogRecord, the caller lookup and
the handler chain, which cost a noticeable share of a unary call. Anything else set on the logger
since (another handler or formatter, a filter, a level) takes the `logging` path as before.

On the event loop, the direct lines of one turn of the loop go out in one write, at the start of the
next turn (a write per response was ~3% of a saturated unary call). A line waits microseconds, and
is lost only if the process dies within them; exit and `configure` write what is waiting.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
import time
from typing import Any

import orjson

LOGGER = "responses_gateway.requests"
log = logging.getLogger(LOGGER)
_BARE = "%(message)s"
_handler: logging.StreamHandler[Any] | None = None  # the one `configure` installed
_waiting: list[str] = []  # direct lines of this turn of the loop, written by `flush`
_waiting_lock = threading.Lock()  # a process may run loops on several threads (tests do)


def configure(enabled: bool) -> None:
    global _handler
    flush()
    log.propagate = False
    log.handlers.clear()
    _handler = None
    if enabled:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter(_BARE))
        log.addHandler(_handler)
        log.setLevel(logging.INFO)
    else:
        log.setLevel(logging.CRITICAL + 1)


def enabled() -> bool:
    return log.isEnabledFor(logging.INFO)


def write(line: dict[str, Any]) -> None:
    line["ts"] = round(time.time(), 3)
    text = orjson.dumps(line).decode()
    handler = _direct()
    if handler is None:
        log.info("%s", text)
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _emit(handler, [text])
        return
    with _waiting_lock:
        first = not _waiting
        _waiting.append(text)
    if first:  # else the flush a line before this one scheduled writes it too
        loop.call_soon(flush)


def flush() -> None:
    """Write the lines waiting for the end of the loop's turn (also run at exit)."""
    with _waiting_lock:
        lines = _waiting[:]
        _waiting.clear()
    handler = _handler
    if lines and handler is not None:
        _emit(handler, lines)


def _emit(handler: logging.StreamHandler[Any], lines: list[str]) -> None:
    """What StreamHandler.handle / emit do for records whose messages are `lines`, minus the records."""
    end = handler.terminator
    try:
        with handler.lock:  # type: ignore[union-attr]  # set by Handler.createLock
            handler.stream.write(end.join(lines) + end)
            handler.flush()
    except Exception:
        for text in lines:
            handler.handleError(log.makeRecord(LOGGER, logging.INFO, __file__, 0, "%s", (text,), None))


atexit.register(flush)


def _direct() -> logging.StreamHandler[Any] | None:
    """The handler to write to directly, when `log.info` would do exactly that and nothing else."""
    handler = _handler
    if (
        handler is None
        or not log.isEnabledFor(logging.INFO)  # the logger's level, and logging.disable
        or log.propagate
        or log.filters
        or len(log.handlers) != 1
        or log.handlers[0] is not handler
        or handler.filters
        or handler.level > logging.INFO
        or handler.formatter is None
        or handler.formatter._fmt != _BARE
        or type(handler.formatter) is not logging.Formatter
    ):
        return None
    return handler
