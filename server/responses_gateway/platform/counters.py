"""The counters behind rpm / tpm / budget limits, and the spend rows, between requests and the store.

Two modes, picked by whether the store is shared:
- one process (SQLite): the counters live in memory, exact for the process; a counter the process has
  not seen yet (a budget period spent before a restart) is read from the store once. Spend and budget
  deltas go to the store in batches, off the request path. Per request: a few dictionary operations.
- replicas sharing the store (PostgreSQL, Redis): `admit` is one round trip that adds the request and
  reads the other counters atomically (so two replicas never both let the N+1st request through); the
  tokens and cost a response adds afterwards are batched like the spend (a tpm or budget total may lag
  by `flush_seconds` across replicas, never locally: this replica's pending deltas are added in).
"""

from __future__ import annotations

import logging

from responses_gateway.store.base import StoreUnavailable
from responses_gateway.store.keys import BUDGET, LIFETIME, Hit, KeyStore, SpendRow

log = logging.getLogger(__name__)

Counter = tuple[str, str, int]
_PERSISTED = (BUDGET, LIFETIME)  # what one process must not forget across a restart
_MAX_PENDING = 100_000  # rows kept while the store is down; beyond that the oldest deltas are dropped


def _id(h: Hit) -> Counter:
    return (h.key_id, h.kind, h.window)


class Counters:
    def __init__(self, store: KeyStore, *, shared: bool) -> None:
        self.store = store
        self.shared = shared
        self._mem: dict[Counter, float] = {}  # one process: the counters themselves
        self._expiry: dict[Counter, float] = {}
        self._pending: dict[Counter, Hit] = {}  # deltas not yet in the store
        self._spend: dict[tuple[str, str, str, str, str], SpendRow] = {}

    async def admit(self, hits: list[Hit]) -> list[float]:
        """Add each hit and return each counter's value after it (this replica's unsent deltas in)."""
        if self.shared:
            values = await self.store.count(hits)
            return [v + self._unsent(h) for v, h in zip(values, hits, strict=True)]
        missing = [Hit(h.key_id, h.kind, h.window, 0, h.expires_at) for h in hits if _id(h) not in self._mem]
        if missing:
            loaded = await self.store.count(missing) if any(h.kind in _PERSISTED for h in missing) else []
            for i, h in enumerate(missing):
                start = loaded[i] + self._unsent(h) if loaded else 0.0
                self._mem.setdefault(_id(h), start)
                self._expiry[_id(h)] = h.expires_at
        out = []
        for h in hits:
            c = _id(h)
            self._mem[c] += h.amount
            out.append(self._mem[c])
        return out

    def add(self, hits: list[Hit], spend: SpendRow | None) -> None:
        """A response's tokens and cost: counted now here, in the store at the next flush."""
        for h in hits:
            c = _id(h)
            if not self.shared and c in self._mem:
                self._mem[c] += h.amount
            if self.shared or h.kind in _PERSISTED:
                old = self._pending.get(c)
                self._pending[c] = h if old is None else Hit(*c, old.amount + h.amount, h.expires_at)
        if spend is not None:
            row = self._spend.get(spend.group)
            if row is None:
                self._spend[spend.group] = spend
            else:
                row.spend += spend.spend
                row.requests += spend.requests
                row.input_tokens += spend.input_tokens
                row.output_tokens += spend.output_tokens
        if len(self._pending) + len(self._spend) > _MAX_PENDING:
            log.warning("the key store is behind: dropping unsent usage counts")
            self._pending.clear()
            self._spend.clear()

    def _unsent(self, h: Hit) -> float:
        pending = self._pending.get(_id(h))
        return pending.amount if pending is not None else 0.0

    async def flush(self) -> None:
        """Send the pending deltas; on a store failure they stay for the next flush."""
        pending, spend = list(self._pending.values()), list(self._spend.values())
        if not pending and not spend:
            return
        self._pending, self._spend = {}, {}
        try:
            await self.store.count(pending)
        except StoreUnavailable as e:
            log.warning("usage counts not written yet (%s); retrying", e.why)
            self._requeue(pending, spend)
            raise
        try:
            await self.store.add_spend(spend)
        except StoreUnavailable as e:
            log.warning("spend not written yet (%s); retrying", e.why)
            self._requeue([], spend)
            raise

    def _requeue(self, pending: list[Hit], spend: list[SpendRow]) -> None:
        """Deltas a flush could not send go back, for the next one."""
        for h in pending:
            old = self._pending.get(_id(h))
            self._pending[_id(h)] = h if old is None else Hit(*_id(h), old.amount + h.amount, h.expires_at)
        for row in spend:
            self.add([], row)

    def prune(self, now: float) -> None:
        """Forget in-memory windows that ended (one process)."""
        ended = [c for c, until in self._expiry.items() if 0 < until < now]
        for c in ended:
            self._mem.pop(c, None)
            self._expiry.pop(c, None)

    def forget_key(self, key_id: str) -> None:
        for table in (self._mem, self._expiry):
            for c in [c for c in table if c[0] == key_id]:
                del table[c]
