"""The key store on Redis: the response store's client (store/redis.py).

Keys (`{id}` a key_id, the sha256 of a virtual key):
  rg:key:{id}             the key's record (JSON)
  rg:keyalias:{alias}     its key_id
  rg:keys                 sorted set of key_ids scored by created_at (listings)
  rg:ctr:{id}:{kind}:{w}  a counter (INCRBYFLOAT), expiring on its own (PEXPIREAT)
  rg:spend:{day}          hash "key\\x1fteam\\x1fuser\\x1fmodel\\x1fmetric" -> sum (HINCRBYFLOAT)
  rg:spenddays            set of the days that have spend (the reports read those, never KEYS)
Every counter operation is one script, so replicas sharing the server count each request once.
"""

from __future__ import annotations

from typing import Any

from redis.commands.core import AsyncScript

from responses_gateway.store.keys import LIFETIME, Hit, KeyRecord, SpendRow
from responses_gateway.store.redis import _RESP, RedisStore

_KEY, _ALIAS, _KEYS, _CTR, _SPEND = "rg:key:", "rg:keyalias:", "rg:keys", "rg:ctr:", "rg:spend:"
_DAYS = "rg:spenddays"
_SEP = "\x1f"
_METRICS = ("spend", "requests", "input_tokens", "output_tokens")

# KEYS: the record, its alias key (or the record again), rg:keys. ARGV: blob, id, created_at.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if KEYS[2] ~= KEYS[1] and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
if KEYS[2] ~= KEYS[1] then redis.call('SET', KEYS[2], ARGV[2]) end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
return 1
"""

# KEYS: the record, the new alias key (or the record), the old alias key (or the record).
# ARGV: blob, id. A new alias another key holds refuses the update.
_REPLACE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if KEYS[2] ~= KEYS[1] then
  local holder = redis.call('GET', KEYS[2])
  if holder and holder ~= ARGV[2] then return 0 end
end
if KEYS[3] ~= KEYS[1] and KEYS[3] ~= KEYS[2] then redis.call('DEL', KEYS[3]) end
redis.call('SET', KEYS[1], ARGV[1])
if KEYS[2] ~= KEYS[1] then redis.call('SET', KEYS[2], ARGV[2]) end
return 1
"""

# KEYS: counters; ARGV: amount, expires_at (ms, '0' never) per counter. Returns the values after.
_COUNT = """
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('INCRBYFLOAT', KEYS[i], ARGV[2 * i - 1])
  if ARGV[2 * i] ~= '0' then redis.call('PEXPIREAT', KEYS[i], ARGV[2 * i]) end
end
return out
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _counter(h: Hit) -> str:
    return f"{_CTR}{h.key_id}:{h.kind}:{h.window}"


class RedisKeys:
    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._scripts: dict[str, AsyncScript] = {}

    def _script(self, name: str, text: str) -> AsyncScript:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self._store._redis.register_script(text)
        return script

    async def _call(self, name: str, text: str, keys: list[str], args: list[Any]) -> Any:
        async with self._store._guard():
            return await self._script(name, text)(keys=keys, args=args)

    async def create_key(self, key: KeyRecord) -> bool:
        record = _KEY + key.key_id
        alias = _ALIAS + key.key_alias if key.key_alias else record
        done = await self._call(
            "create", _CREATE, [record, alias, _KEYS], [key.to_json(), key.key_id, repr(key.created_at)]
        )
        return bool(done)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        async with self._store._guard():
            blob = await self._store._redis.get(_KEY + key_id)
        return None if blob is None else KeyRecord.from_json(blob)

    async def find_alias(self, alias: str) -> KeyRecord | None:
        async with self._store._guard():
            key_id = await self._store._redis.get(_ALIAS + alias)
        return None if key_id is None else await self.get_key(_text(key_id))

    async def replace_key(self, key: KeyRecord) -> bool:
        old = await self.get_key(key.key_id)
        if old is None:
            return False
        record = _KEY + key.key_id
        new_alias = _ALIAS + key.key_alias if key.key_alias else record
        old_alias = _ALIAS + old.key_alias if old.key_alias else record
        done = await self._call(
            "replace", _REPLACE, [record, new_alias, old_alias], [key.to_json(), key.key_id]
        )
        return bool(done)

    async def delete_keys(self, key_ids: list[str]) -> list[str]:
        gone = []
        for key_id in key_ids:
            key = await self.get_key(key_id)
            if key is None:
                continue
            pipe = self._store._redis.pipeline(transaction=True)
            pipe.delete(_KEY + key_id, f"{_CTR}{key_id}:{LIFETIME}:0")
            if key.key_alias:
                pipe.delete(_ALIAS + key.key_alias)
            pipe.zrem(_KEYS, key_id)
            async with self._store._guard():
                deleted = (await pipe.execute())[0]
            if deleted:
                gone.append(key_id)
        return gone

    async def list_keys(
        self, *, user_id: str | None, team_id: str | None, offset: int, limit: int
    ) -> tuple[list[KeyRecord], int]:
        # Filtering happens here: admin listings are rare and key counts small next to responses.
        async with self._store._guard():
            ids: list[bytes] = await self._store._redis.zrevrange(_KEYS, 0, -1)  # type: ignore[assignment]
            blobs = await self._store._redis.mget([_KEY + i.decode() for i in ids]) if ids else []
        keys = [KeyRecord.from_json(b) for b in blobs if b is not None]
        keys.sort(key=lambda k: (-k.created_at, k.key_id))
        keys = [
            k
            for k in keys
            if (user_id is None or k.user_id == user_id) and (team_id is None or k.team_id == team_id)
        ]
        return keys[offset : offset + limit], len(keys)

    async def count(self, hits: list[Hit]) -> list[float]:
        if not hits:
            return []
        args: list[str] = []
        for h in hits:
            args += [repr(float(h.amount)), str(int(h.expires_at * 1000)) if h.expires_at > 0 else "0"]
        values = await self._call("count", _COUNT, [_counter(h) for h in hits], args)
        return [float(v) for v in values]

    async def add_spend(self, rows: list[SpendRow]) -> None:
        if not rows:
            return
        pipe = self._store._redis.pipeline(transaction=True)
        for day in {r.day for r in rows}:
            pipe.sadd(_DAYS, day)
        for r in rows:
            base = _SEP.join(r.group[1:]) + _SEP
            for metric in _METRICS:
                value = getattr(r, metric)
                if value:
                    pipe.hincrbyfloat(_SPEND + r.day, base + metric, float(value))
        async with self._store._guard():
            await pipe.execute()

    async def spend_rows(self, start_day: str, end_day: str, key_id: str | None) -> list[SpendRow]:
        async with self._store._guard():
            days = [_text(d) for d in await self._store._redis.smembers(_DAYS)]
        wanted = sorted(_SPEND + d for d in days if start_day <= d <= end_day)
        if not wanted:
            return []
        pipe = self._store._redis.pipeline(transaction=False)
        for day in wanted:
            pipe.hgetall(day)
        async with self._store._guard():
            hashes = await pipe.execute()
        out: dict[tuple[str, ...], SpendRow] = {}
        for day, fields in zip(wanted, hashes, strict=True):
            for name, value in fields.items():
                *group, metric = name.decode().split(_SEP)
                if len(group) != 4 or metric not in _METRICS or (key_id is not None and group[0] != key_id):
                    continue
                row = out.setdefault((day, *group), SpendRow(day[len(_SPEND) :], *group))
                number = float(value)
                setattr(row, metric, number if metric == "spend" else round(number))
        return list(out.values())

    async def response_owner(self, response_id: str) -> str | None:
        async with self._store._guard():
            created, key_id = await self._store._redis.hmget(_RESP + response_id, ["created_at", "key_id"])
        if created is None:
            return None
        return _text(key_id) if key_id else ""

    async def purge_counters(self, now: float) -> None:
        return None  # counters expire by themselves (PEXPIREAT)
