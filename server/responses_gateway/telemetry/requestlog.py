"""The request log: one JSON line per response on the `responses_gateway.requests` logger.

Its own handler (stderr, the bare message) so each line is JSON a log shipper reads as is, whatever
the format of the gateway's other logs; `propagate` is off so it is not printed twice.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

LOGGER = "responses_gateway.requests"
log = logging.getLogger(LOGGER)


def configure(enabled: bool) -> None:
    log.propagate = False
    log.handlers.clear()
    if enabled:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    else:
        log.setLevel(logging.CRITICAL + 1)


def enabled() -> bool:
    return log.isEnabledFor(logging.INFO)


def write(line: dict[str, Any]) -> None:
    line["ts"] = round(time.time(), 3)
    log.info("%s", orjson.dumps(line).decode())
