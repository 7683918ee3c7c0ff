"""The gateway's own API key check (general_settings.master_key), shared by both transports."""

from __future__ import annotations

import hmac

from responses_gateway.errors import GatewayError, Reason


class Authenticator:
    def __init__(self, master_key: str | None) -> None:
        self._key = master_key.encode() if master_key else None

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def check(self, authorization: str | None) -> None:
        """`authorization` is the header / metadata value, `Bearer <key>` (a bare key is accepted too)."""
        if self._key is None:
            return
        if not authorization:
            raise GatewayError(
                Reason.UNAUTHENTICATED,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        scheme, _, token = authorization.strip().partition(" ")
        key = token.strip() if scheme.lower() == "bearer" and token else authorization.strip()
        if not hmac.compare_digest(key.encode(), self._key):
            raise GatewayError(Reason.UNAUTHENTICATED, "Incorrect API key provided.")
