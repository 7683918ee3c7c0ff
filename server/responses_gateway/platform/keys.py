"""The admin API's operations on virtual keys and spend, in LiteLLM's JSON shapes (`/key/generate`,
`/key/info`, `/key/update`, `/key/delete`, `/key/list`, `/global/spend/report`). The REST shim hands
the JSON bodies and query values here; the gRPC AdminService converts its messages to the same JSON
(their field names are LiteLLM's) — one validation and one behaviour for both.

A key is generated here (`sk-` and 32 random URL-safe characters) and returned once; the store keeps
its sha256 (`token` in LiteLLM's answers), and every later operation names the key by either.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from responses_gateway.errors import GatewayError, Reason, echo
from responses_gateway.platform.durations import budget_period, day_of, iso, parse_duration
from responses_gateway.platform.gate import Gate, key_id_of
from responses_gateway.store.keys import KeyRecord, KeyStore, SpendRow

_HASH = re.compile(r"^[0-9a-f]{64}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_GROUPS = {"key": "key", "api_key": "key", "model": "model", "day": "day", "team": "team",
           "user": "user", "customer": "user", "end_user": "user"}  # fmt: skip
_MAX_PAGE = 100
_MAX_DAYS = 366


def _duration(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if parse_duration(value) is None:
        raise ValueError(f"{field} must be a duration such as 30s, 15m, 1h, 30d or 1mo")
    return value.strip()


class _KeyFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_alias: str | None = Field(None, max_length=256)
    models: list[str] | None = None
    rpm_limit: int | None = Field(None, ge=0)
    tpm_limit: int | None = Field(None, ge=0)
    max_budget: float | None = Field(None, ge=0, allow_inf_nan=False)
    budget_duration: str | None = None
    duration: str | None = None  # how long the key is valid, from now
    user_id: str | None = Field(None, max_length=256)
    team_id: str | None = Field(None, max_length=256)
    metadata: dict[str, Any] | None = None
    blocked: bool | None = None

    @field_validator("budget_duration")
    @classmethod
    def _budget(cls, v: str | None) -> str | None:
        return _duration(v, "budget_duration")

    @field_validator("duration")
    @classmethod
    def _valid_for(cls, v: str | None) -> str | None:
        return _duration(v, "duration")


class GenerateRequest(_KeyFields):
    key: str | None = Field(None, min_length=8, max_length=256)  # a key of the caller's choosing


class UpdateRequest(_KeyFields):
    key: str


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[str] = Field(default_factory=list)
    key_aliases: list[str] = Field(default_factory=list)


def _parse(model: type[BaseModel], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or None
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = f"Unrecognized request argument supplied: {echo(where)}"
        raise GatewayError(Reason.INVALID_REQUEST, message, param=where) from None


def _masked(key: str) -> str:
    return f"{key[:3]}...{key[-4:]}"


def _apply(record: KeyRecord, fields: _KeyFields, now: float) -> None:
    for name in ("key_alias", "rpm_limit", "tpm_limit", "max_budget", "budget_duration", "user_id",
                 "team_id"):  # fmt: skip
        if name in fields.model_fields_set:
            setattr(record, name, getattr(fields, name))
    if fields.models is not None:
        record.models = list(fields.models)
    if fields.metadata is not None:
        record.metadata = fields.metadata
    if fields.blocked is not None:
        record.blocked = fields.blocked
    if "duration" in fields.model_fields_set:
        seconds = parse_duration(fields.duration) if fields.duration else None
        record.expires = now + seconds if seconds is not None else None


class KeyAdmin:
    def __init__(self, keys: KeyStore, gate: Gate) -> None:
        self.keys = keys
        self.gate = gate

    async def _find(self, key: str, param: str = "key") -> KeyRecord:
        """A key named by itself or by its token (sha256)."""
        record = await self.keys.get_key(key_id_of(key))
        if record is None and _HASH.match(key):
            record = await self.keys.get_key(key)
        if record is None:
            raise GatewayError(Reason.NOT_FOUND, f"Key '{echo(_masked(key))}' not found.", param=param)
        return record

    async def info_of(self, record: KeyRecord) -> dict[str, Any]:
        lifetime, period = await self.gate.spent(record)
        reset = budget_period(record, time.time())[1] if record.budget_duration else None
        return {
            "token": record.key_id,
            "key_name": record.key_name,
            "key_alias": record.key_alias,
            "spend": lifetime,
            "budget_spend": period if period is not None else lifetime,
            "max_budget": record.max_budget,
            "budget_duration": record.budget_duration,
            "budget_reset_at": iso(reset),
            "expires": iso(record.expires),
            "models": record.models,
            "rpm_limit": record.rpm_limit,
            "tpm_limit": record.tpm_limit,
            "user_id": record.user_id,
            "team_id": record.team_id,
            "metadata": record.metadata,
            "blocked": record.blocked,
            "created_at": iso(record.created_at),
        }

    async def generate(self, body: dict[str, Any]) -> dict[str, Any]:
        request: GenerateRequest = _parse(GenerateRequest, body)
        key = request.key or f"sk-{secrets.token_urlsafe(24)}"
        now = time.time()
        record = KeyRecord(key_id=key_id_of(key), key_name=_masked(key), created_at=now)
        _apply(record, request, now)
        if not await self.keys.create_key(record):
            what = "alias" if record.key_alias and await self.keys.find_alias(record.key_alias) else "key"
            raise GatewayError(
                Reason.CONFLICT,
                f"A key with this {what} exists already.",
                param="key_alias" if what == "alias" else "key",
            )
        self.gate.forget(record.key_id)  # a lookup before it existed is cached as unknown
        return {"key": key, **await self.info_of(record)}

    async def info(self, key: str | None) -> dict[str, Any]:
        if not key:
            raise GatewayError(Reason.INVALID_REQUEST, "Missing required parameter: 'key'.", param="key")
        record = await self._find(key)
        return {"key": key, "info": await self.info_of(record)}

    async def update(self, body: dict[str, Any]) -> dict[str, Any]:
        request: UpdateRequest = _parse(UpdateRequest, body)
        record = await self._find(request.key)
        _apply(record, request, time.time())
        if not await self.keys.replace_key(record):
            if await self.keys.get_key(record.key_id) is None:
                raise GatewayError(Reason.NOT_FOUND, "Key not found.", param="key")
            raise GatewayError(Reason.CONFLICT, "A key with this alias exists already.", param="key_alias")
        self.gate.forget(record.key_id)
        return await self.info_of(record)

    async def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        request: DeleteRequest = _parse(DeleteRequest, body)
        if not request.keys and not request.key_aliases:
            raise GatewayError(Reason.INVALID_REQUEST, "Name the keys to delete in 'keys'.", param="keys")
        ids: dict[str, str] = {}  # key_id -> how the caller named it
        for key in request.keys:
            ids[(await self._find(key, "keys")).key_id] = key
        for alias in request.key_aliases:
            found = await self.keys.find_alias(alias)
            if found is None:
                raise GatewayError(
                    Reason.NOT_FOUND, f"Key alias '{echo(alias)}' not found.", param="key_aliases"
                )
            ids[found.key_id] = alias
        gone = await self.keys.delete_keys(list(ids))
        for key_id in gone:
            self.gate.forget(key_id)
            self.gate.counters.forget_key(key_id)
        return {"deleted_keys": [ids[k] for k in gone]}

    async def list(self, query: dict[str, str]) -> dict[str, Any]:
        page, size = _int(query, "page", 1, 1, 10**6), _int(query, "size", 10, 1, _MAX_PAGE)
        records, total = await self.keys.list_keys(
            user_id=query.get("user_id"), team_id=query.get("team_id"), offset=(page - 1) * size, limit=size
        )
        full = query.get("return_full_object", "false").lower() == "true"
        return {
            "keys": [await self.info_of(r) for r in records] if full else [r.key_id for r in records],
            "total_count": total,
            "current_page": page,
            "total_pages": max(math.ceil(total / size), 1),
        }

    async def spend_report(self, query: dict[str, str]) -> dict[str, Any]:
        group = _GROUPS.get(query.get("group_by", "key"))
        if group is None:
            raise GatewayError(
                Reason.INVALID_REQUEST,
                "group_by must be one of key, model, day, team or user.",
                param="group_by",
            )
        now = time.time()
        end = _day(query, "end_date", day_of(now))
        start = _day(query, "start_date", day_of(now - 30 * 86400))
        if start > end:
            raise GatewayError(Reason.INVALID_REQUEST, "start_date is after end_date.", param="start_date")
        if (time.mktime(time.strptime(end, "%Y-%m-%d")) - time.mktime(time.strptime(start, "%Y-%m-%d"))) > (
            _MAX_DAYS * 86400
        ):
            raise GatewayError(
                Reason.INVALID_REQUEST, f"A report spans {_MAX_DAYS} days at most.", param="start_date"
            )
        key = query.get("key") or query.get("api_key")
        key_id = (await self._find(key)).key_id if key else None
        await self.gate.counters.flush()
        rows = await self.keys.spend_rows(start, end, key_id)
        return {"group_by": group, "start_date": start, "end_date": end, **report(rows, group)}


def report(rows: list[SpendRow], group: str) -> dict[str, Any]:
    """Spend rows summed per group: biggest spend first (by day: in date order)."""
    sums: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"spend": 0.0, "requests": 0, "input_tokens": 0, "output_tokens": 0}
    )
    for r in rows:
        name = {"key": r.key_id, "model": r.model, "day": r.day, "team": r.team_id, "user": r.end_user}[group]
        s = sums[name]
        s["spend"] += r.spend
        s["requests"] += r.requests
        s["input_tokens"] += r.input_tokens
        s["output_tokens"] += r.output_tokens
    data = [{"group": name, **values} for name, values in sums.items()]
    if group == "day":
        data.sort(key=lambda d: d["group"])
    else:
        data.sort(key=lambda d: (-d["spend"], d["group"]))
    return {"total_spend": sum(d["spend"] for d in data), "data": data}


def _int(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise GatewayError(
            Reason.INVALID_REQUEST, f"{name} must be an integer from {low} to {high}.", param=name
        )
    return value


def _day(query: dict[str, str], name: str, default: str) -> str:
    value = query.get(name) or default
    try:
        if not _DAY.match(value):
            raise ValueError(value)
        time.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise GatewayError(Reason.INVALID_REQUEST, f"{name} must be a date YYYY-MM-DD.", param=name) from None
    return value
