"""The key store's interface: virtual keys, the counters behind their limits, and spend.

A sibling of `ResponseStore` on the same backends (and the same connection): SQLite for one process,
PostgreSQL and Redis when replicas share limits. The platform layer (`platform/`) decides what a key
may do; this protocol only keeps the rows.

- Keys are stored under the sha256 of the key (`key_id`); the key itself is never stored.
- Counters are floats keyed by (key_id, kind, window), added to atomically and read back in the same
  round trip (`count`), each expiring at its own time (a per-minute window lives a little over a
  minute; a budget period until it ends; 0 = never). Windows are numbers the caller picks (the
  minute's start, the budget period's start), so replicas that agree on the clock share them.
- Spend rows are deltas per (day, key, team, end user, model), summed on write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

# Counter kinds.
REQUESTS = "r"  # requests in a minute window (rpm)
TOKENS = "t"  # tokens in a minute window (tpm)
BUDGET = "b"  # USD in the current budget period (max_budget / budget_duration)
LIFETIME = "s"  # USD ever spent (window 0)


@dataclass
class KeyRecord:
    key_id: str  # sha256 hex of the key (LiteLLM's `token`)
    key_name: str  # the key shown masked (`sk-...abcd`), for listings
    created_at: float
    key_alias: str | None = None
    models: list[str] = field(default_factory=list)  # empty: every model
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_budget: float | None = None
    budget_duration: str | None = None  # "30d", "1h", ... (LiteLLM's spelling)
    expires: float | None = None  # epoch seconds; None: never
    user_id: str | None = None
    team_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    blocked: bool = False

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__)

    @classmethod
    def from_json(cls, blob: bytes | str) -> KeyRecord:
        data = orjson.loads(blob)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class Hit:
    """Add `amount` to a counter (0: just read it); the row expires at `expires_at` (epoch, 0: never)."""

    key_id: str
    kind: str
    window: int
    amount: float
    expires_at: float


@dataclass
class SpendRow:
    day: str  # YYYY-MM-DD (UTC)
    key_id: str
    team_id: str
    end_user: str
    model: str
    spend: float = 0.0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def group(self) -> tuple[str, str, str, str, str]:
        return (self.day, self.key_id, self.team_id, self.end_user, self.model)


class KeyStore(Protocol):
    async def create_key(self, key: KeyRecord) -> bool:
        """Insert a new key; False when its key_id or its alias is taken."""

    async def get_key(self, key_id: str) -> KeyRecord | None: ...

    async def find_alias(self, alias: str) -> KeyRecord | None: ...

    async def replace_key(self, key: KeyRecord) -> bool:
        """Replace a stored key (same key_id); False when it is gone or the new alias is taken."""

    async def delete_keys(self, key_ids: list[str]) -> list[str]:
        """The ids that were deleted (their counters go; their spend rows stay, for the reports)."""

    async def list_keys(
        self, *, user_id: str | None, team_id: str | None, offset: int, limit: int
    ) -> tuple[list[KeyRecord], int]:
        """A page of keys, newest first, and how many match in all."""

    async def count(self, hits: list[Hit]) -> list[float]:
        """Apply each hit atomically; each counter's value after it, in order."""

    async def add_spend(self, rows: list[SpendRow]) -> None:
        """Add these deltas to the spend rows of their (day, key, team, end user, model)."""

    async def spend_rows(self, start_day: str, end_day: str, key_id: str | None) -> list[SpendRow]:
        """Spend rows with start_day <= day <= end_day (inclusive), of one key or all."""

    async def response_owner(self, response_id: str) -> str | None:
        """The key_id stored with a response ("" when no virtual key made it); None when not stored."""

    async def purge_counters(self, now: float) -> None:
        """Drop counters that expired (a backend whose rows expire by themselves does nothing)."""
