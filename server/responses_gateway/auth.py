"""Who is calling: the gateway's master key (general_settings.master_key) or a virtual key, shared by
both transports.

The master key is compared here; a virtual key is resolved by the platform layer (`platform/gate.py`,
passed in as `resolver`), which knows the key store and caches lookups. Both give a `Principal`, which
the transports put in the call's context: the domain stamps responses with its `key_id`, and the
platform checks its limits and the responses it may see.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass

from responses_gateway.errors import GatewayError, Reason


@dataclass(frozen=True, slots=True)
class Principal:
    """`key_id` is the sha256 of a virtual key ("" for the master key, or a gateway without keys)."""

    key_id: str = ""
    alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None

    @property
    def master(self) -> bool:
        """Sees and may do everything (every response, the admin API)."""
        return not self.key_id


MASTER = Principal()

# The principal of the gRPC call being served (set by its interceptor, read by the servicer: grpc.aio
# runs both in one task, see transport/grpc/method.py).
CURRENT_PRINCIPAL: ContextVar[Principal] = ContextVar("principal", default=MASTER)

Resolver = Callable[[str], Awaitable[Principal | None]]

_MISSING = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def bearer(authorization: str) -> str:
    """The key of an `authorization` value: `Bearer <key>`, or a bare key."""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token else authorization.strip()


class Authenticator:
    def __init__(self, master_key: str | None, resolver: Resolver | None = None) -> None:
        self._key = master_key.encode() if master_key else None
        self.resolver = resolver  # virtual keys; None: the master key alone

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def check(self, authorization: str | None) -> None:
        """The master key, or UNAUTHENTICATED (the admin API and /metrics)."""
        if self._key is None:
            return
        if not authorization:
            raise GatewayError(Reason.UNAUTHENTICATED, _MISSING)
        if not hmac.compare_digest(bearer(authorization).encode(), self._key):
            raise GatewayError(Reason.UNAUTHENTICATED, "Incorrect API key provided.")

    async def authenticate(self, authorization: str | None) -> Principal:
        """The master key or a virtual key the resolver knows (it raises for an expired or blocked
        one); anything else is UNAUTHENTICATED. Without a master key, everyone is the master."""
        if self._key is None:
            return MASTER
        if not authorization:
            raise GatewayError(Reason.UNAUTHENTICATED, _MISSING)
        key = bearer(authorization)
        if hmac.compare_digest(key.encode(), self._key):
            return MASTER
        if self.resolver is not None and key:
            found = await self.resolver(key)
            if found is not None:
                return found
        raise GatewayError(Reason.UNAUTHENTICATED, "Incorrect API key provided.")
