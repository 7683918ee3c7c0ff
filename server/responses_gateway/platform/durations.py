"""LiteLLM's duration strings (`30s`, `15m`, `1h`, `30d`, `2w`, `1mo`) and the windows built on them."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from responses_gateway.store.keys import KeyRecord

_DURATION = re.compile(r"^\s*(\d{1,9})\s*(s|m|h|d|w|mo)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400}


def parse_duration(text: str) -> float | None:
    """Seconds, or None when `text` is not a duration."""
    m = _DURATION.match(text)
    if m is None or int(m.group(1)) == 0:
        return None
    return float(int(m.group(1)) * _SECONDS[m.group(2)])


def budget_period(key: KeyRecord, now: float) -> tuple[int, float]:
    """The current budget period of a key: (its start, as the counter's window; when it ends).
    Periods run from the key's creation, back to back; without budget_duration, one that never ends."""
    length = parse_duration(key.budget_duration) if key.budget_duration else None
    if length is None:
        return 0, 0.0
    n = max(int((now - key.created_at) // length), 0)
    start = key.created_at + n * length
    return int(start), start + length


def day_of(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
