"""The request log: one JSON line per response on the `responses_gateway.requests` logger.

Its own handler (stderr, the bare message) so each line is JSON a log shipper reads as is, whatever
the format of the gateway's other logs; `propagate` is off so it is not printed twice.

While that handler is still the logger's only one, as `configure` left it, a line is written to its
stream directly: the same bytes `log.info` would write, without a LogRecord, the caller lookup and
the handler chain, which cost a noticeable share of a unary call. Anything else set on the logger
since (another handler or formatter, a filter, a level) takes the `logging` path as before.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

LOGGER = "responses_gateway.requests"
log = logging.getLogger(LOGGER)
_BARE = "%(message)s"
_handler: logging.StreamHandler[Any] | None = None  # the one `configure` installed


def configure(enabled: bool) -> None:
    global _handler
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
    # What StreamHandler.handle / emit do for a record whose message is `text`, minus the record.
    try:
        with handler.lock:  # type: ignore[union-attr]  # set by Handler.createLock
            handler.stream.write(text + handler.terminator)
            handler.flush()
    except Exception:
        handler.handleError(log.makeRecord(LOGGER, logging.INFO, __file__, 0, "%s", (text,), None))


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
