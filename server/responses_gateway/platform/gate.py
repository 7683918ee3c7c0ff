"""The gate every call passes: which virtual key it is, whether the key may make this request now
(models, rpm, tpm, budget), what the response cost it, and which stored responses it may see.

Key lookups are cached here for `cache_seconds` (a key generated, changed or deleted on this replica
takes effect at once; on another replica within that time). Counters: `counters.py`. Spend is recorded
for every call, the master key's too (key ""), when its response ends (the call record's `on_end`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from responses_gateway.aio import cancel_and_wait
from responses_gateway.auth import MASTER, Principal
from responses_gateway.errors import GatewayError, Reason, echo
from responses_gateway.platform.counters import Counters
from responses_gateway.platform.durations import budget_period, day_of
from responses_gateway.store.base import StoreUnavailable
from responses_gateway.store.keys import (
    BUDGET,
    LIFETIME,
    REQUESTS,
    TOKENS,
    Hit,
    KeyRecord,
    KeyStore,
    SpendRow,
)
from responses_gateway.telemetry.record import CallRecord
from responses_gateway.v1 import request_pb2

log = logging.getLogger(__name__)

_CACHE_LIMIT = 10_000  # entries (unknown keys included: random tokens must not grow it without end)
_PURGE_EVERY = 60.0


def key_id_of(key: str) -> str:
    """How a key is stored and named: the sha256 of the key, in hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def _not_found(response_id: str) -> GatewayError:
    return GatewayError(
        Reason.RESPONSE_NOT_FOUND, f"Response with id '{echo(response_id)}' not found.", param="response_id"
    )


@dataclass(slots=True)
class _Cached:
    key: KeyRecord | None
    principal: Principal | None
    until: float


def _principal(key: KeyRecord) -> Principal:
    return Principal(key.key_id, key.key_alias, key.user_id, key.team_id)


class Gate:
    def __init__(
        self,
        keys: KeyStore,
        *,
        shared: bool,
        cache_seconds: float = 5.0,
        flush_seconds: float = 0.5,
    ) -> None:
        self.keys = keys
        self.counters = Counters(keys, shared=shared)
        self.cache_seconds = cache_seconds
        self.flush_seconds = flush_seconds
        self._cache: dict[str, _Cached] = {}
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._flusher(), name="key-counters-flusher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        with contextlib.suppress(StoreUnavailable):
            await self.counters.flush()

    async def _flusher(self) -> None:
        purged = time.monotonic()
        while True:
            await asyncio.sleep(self.flush_seconds)
            with contextlib.suppress(StoreUnavailable):  # logged by flush; retried next time
                await self.counters.flush()
            if time.monotonic() - purged > _PURGE_EVERY:
                purged = time.monotonic()
                self.counters.prune(time.time())
                with contextlib.suppress(StoreUnavailable):
                    await self.keys.purge_counters(time.time())

    # --- who is calling --------------------------------------------------------------------------

    async def resolve(self, key: str) -> Principal | None:
        """The virtual key's principal; None for a key nobody generated; UNAUTHENTICATED for one
        that expired or is blocked."""
        key_id = key_id_of(key)
        record = await self.lookup(key_id)
        if record is None:
            return None
        if record.blocked:
            raise GatewayError(Reason.UNAUTHENTICATED, "This API key is blocked.")
        if record.expires is not None and time.time() >= record.expires:
            raise GatewayError(Reason.UNAUTHENTICATED, "This API key has expired.")
        cached = self._cache.get(key_id)
        return cached.principal if cached is not None and cached.principal else _principal(record)

    async def lookup(self, key_id: str) -> KeyRecord | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and cached.until > now:
            return cached.key
        record = await self.keys.get_key(key_id)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        principal = _principal(record) if record is not None else None
        self._cache[key_id] = _Cached(record, principal, now + self.cache_seconds)
        return record

    def forget(self, key_id: str) -> None:
        """A key changed here: the next call reads it again."""
        self._cache.pop(key_id, None)

    # --- limits ------------------------------------------------------------------------------------

    async def admit(
        self, principal: Principal, model: str, record: CallRecord, end_user: str = ""
    ) -> dict[str, str]:
        """Let the call through or raise (PERMISSION_DENIED for a model the key may not use,
        RATE_LIMITED for rpm / tpm, BUDGET_EXCEEDED); count it, and record what its response cost
        when it ends. Returns the `x-ratelimit-*` headers of a key with limits."""
        if principal.master:
            record.on_end.append(self._spender(MASTER, None, end_user, 0))
            return {}
        key = await self.lookup(principal.key_id)
        if key is None:  # deleted since the call was authenticated
            raise GatewayError(Reason.UNAUTHENTICATED, "Incorrect API key provided.")
        if key.models and model not in key.models:
            raise GatewayError(
                Reason.PERMISSION_DENIED,
                f"This API key may not use the model '{echo(model)}'.",
                param="model",
            )
        now = time.time()
        minute = int(now // 60)
        minute_ends = (minute + 1) * 60.0
        hits: list[Hit] = []
        if key.rpm_limit is not None:
            hits.append(Hit(key.key_id, REQUESTS, minute, 1, minute_ends + 60))
        if key.tpm_limit is not None:
            hits.append(Hit(key.key_id, TOKENS, minute, 0, minute_ends + 60))
        period = budget_period(key, now) if key.max_budget is not None else None
        if period is not None:
            hits.append(Hit(key.key_id, BUDGET, period[0], 0, period[1]))
        values = iter(await self.counters.admit(hits)) if hits else iter(())
        headers: dict[str, str] = {}
        reset = f"{max(minute_ends - now, 0.0):.3f}s"
        wait = max(math.ceil(minute_ends - now), 1)
        if key.rpm_limit is not None:
            used = next(values)
            headers |= {
                "x-ratelimit-limit-requests": str(key.rpm_limit),
                "x-ratelimit-remaining-requests": str(max(key.rpm_limit - int(used), 0)),
                "x-ratelimit-reset-requests": reset,
            }
            if used > key.rpm_limit:
                raise self._limited("requests", key, key.rpm_limit, wait, headers)
        if key.tpm_limit is not None:
            used = next(values)
            headers |= {
                "x-ratelimit-limit-tokens": str(key.tpm_limit),
                "x-ratelimit-remaining-tokens": str(max(key.tpm_limit - int(used), 0)),
                "x-ratelimit-reset-tokens": reset,
            }
            if used >= key.tpm_limit:
                raise self._limited("tokens", key, key.tpm_limit, wait, headers)
        if period is not None and key.max_budget is not None:
            spent = next(values)
            if spent >= key.max_budget:
                raise GatewayError(
                    Reason.BUDGET_EXCEEDED,
                    f"You exceeded your current quota: this key spent ${spent:.6g} of its budget of "
                    f"${key.max_budget:.6g}"
                    + (f" for {key.budget_duration}." if key.budget_duration else "."),
                )
        record.on_end.append(self._spender(principal, key, end_user, minute))
        return headers

    @staticmethod
    def _limited(what: str, key: KeyRecord, limit: int, wait: int, headers: dict[str, str]) -> GatewayError:
        name = key.key_alias or key.key_name
        return GatewayError(
            Reason.RATE_LIMITED,
            f"Rate limit reached for key '{echo(name)}' on {what} per minute: limit {limit}. "
            f"Please try again in {wait}s.",
            retry_after=wait,
            headers=headers,
        )

    def _spender(
        self, principal: Principal, key: KeyRecord | None, end_user: str, minute: int
    ) -> Callable[[CallRecord | None], None]:
        counters = self.counters

        def ended(record: CallRecord | None) -> None:
            if record is None or not record.deployment:
                return  # orphaned, or no upstream was called: nothing was spent
            cost = record.cost or 0.0
            tokens = record.input_tokens + record.output_tokens
            now = time.time()
            hits: list[Hit] = []
            if key is not None:
                hits.append(Hit(key.key_id, LIFETIME, 0, cost, 0))
                if key.tpm_limit is not None and tokens:
                    # The minute the response ended in: a long stream's tokens count when they are known.
                    m = int(now // 60)
                    hits.append(Hit(key.key_id, TOKENS, m, tokens, (m + 2) * 60.0))
                period = budget_period(key, now) if key.max_budget is not None else None
                if period is not None and cost:
                    hits.append(Hit(key.key_id, BUDGET, period[0], cost, period[1]))
            row = SpendRow(
                day_of(now),
                principal.key_id,
                principal.team_id or "",
                end_user,
                record.served_model or record.model,
                cost,
                1,
                record.input_tokens,
                record.output_tokens,
            )
            counters.add(hits, row)

        return ended

    async def admit_create(
        self,
        principal: Principal,
        create: request_pb2.CreateResponseRequest,
        record: CallRecord,
        kept: str | None = None,
    ) -> dict[str, str]:
        """A create (REST, gRPC, WebSocket, the chat bridge): the `previous_response_id` it continues
        must be the key's own (`kept`: a WebSocket connection's own store:false turn, which is), then
        `admit`. The end user is `safety_identifier`, else `user` (OpenAI's newer and older fields)."""
        previous = create.previous_response_id
        if previous and previous != kept:
            await self.check_previous(principal, previous)
        end_user = create.safety_identifier or create.user
        return await self.admit(principal, create.model, record, end_user[:256])

    # --- what a key may see ----------------------------------------------------------------------

    async def check_owner(self, principal: Principal, response_id: str) -> None:
        """A virtual key reaches only the responses it made: any other id is 404, as if it did not
        exist (and is never asked of an upstream). The master key reaches all."""
        if principal.master:
            return
        if await self.keys.response_owner(response_id) != principal.key_id:
            raise _not_found(response_id)

    async def check_previous(self, principal: Principal, response_id: str) -> None:
        """The same rule for `previous_response_id`, with the error a create gets for it."""
        if principal.master or not response_id:
            return
        if await self.keys.response_owner(response_id) != principal.key_id:
            raise GatewayError(
                Reason.PREVIOUS_RESPONSE_NOT_FOUND,
                f"Previous response with id '{echo(response_id)}' not found.",
                param="previous_response_id",
            )

    # --- spend -------------------------------------------------------------------------------------

    async def spent(self, key: KeyRecord) -> tuple[float, float | None]:
        """(lifetime spend, spend in the current budget period or None), pending deltas sent first."""
        with contextlib.suppress(StoreUnavailable):
            await self.counters.flush()
        now = time.time()
        hits = [Hit(key.key_id, LIFETIME, 0, 0, 0)]
        period = budget_period(key, now) if key.budget_duration else None
        if period is not None:
            hits.append(Hit(key.key_id, BUDGET, period[0], 0, period[1]))
        values = await self.keys.count(hits)
        return values[0], (values[1] if period is not None else None)
