"""The admin REST API, shaped like LiteLLM's: virtual keys (`/key/generate`, `/key/info`, `/key/update`,
`/key/delete`, `/key/list`) and spend (`/global/spend/report`, also at `/spend/report`). The master key
only; a virtual key may read its own `/key/info`. The operations are platform/keys.py's."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responses_gateway.auth import Authenticator, Principal, bearer
from responses_gateway.errors import GatewayError, Reason, as_gateway_error
from responses_gateway.platform.gate import key_id_of
from responses_gateway.platform.keys import KeyAdmin
from responses_gateway.telemetry import metrics
from responses_gateway.transport.rest.errors import error_response
from responses_gateway.transport.rest.params import read_json_body

log = logging.getLogger(__name__)

Op = Callable[[Request, Principal], Awaitable[dict[str, Any]]]
_MAX_BODY = 1024 * 1024


def _denied() -> GatewayError:
    return GatewayError(Reason.PERMISSION_DENIED, "Only the master key may use the admin API.")


class AdminRoutes:
    def __init__(self, admin: KeyAdmin, authenticator: Authenticator) -> None:
        self.admin = admin
        self.auth = authenticator

    def _guard(self, path: str, op: Op) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            try:
                if not self.auth.enabled:
                    # Keys exist only beside a master key (as in LiteLLM): there is nobody to trust.
                    raise GatewayError(
                        Reason.PERMISSION_DENIED,
                        "The admin API needs general_settings.master_key to be set.",
                    )
                principal = await self.auth.authenticate(request.headers.get("authorization"))
                body = await op(request, principal)
                return Response(orjson.dumps(body), media_type="application/json")
            except Exception as e:
                error = as_gateway_error(e)
                if error is not e and error.reason == Reason.INTERNAL:
                    log.exception("admin request failed: %s", request.url.path)
                metrics.observe_error(path, error)
                return error_response(error)

        return guarded

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        body: dict[str, Any] = await read_json_body(request, _MAX_BODY)
        return body

    async def generate(self, request: Request, principal: Principal) -> dict[str, Any]:
        if not principal.master:
            raise _denied()
        return await self.admin.generate(await self._body(request))

    async def info(self, request: Request, principal: Principal) -> dict[str, Any]:
        key = request.query_params.get("key")
        if not principal.master:
            # A virtual key may ask about itself (with no `key`, or naming itself), nothing else.
            own = bearer(request.headers.get("authorization", ""))
            if key is not None and key not in (own, principal.key_id) and key_id_of(key) != principal.key_id:
                raise _denied()
            key = key or own
        return await self.admin.info(key)

    async def update(self, request: Request, principal: Principal) -> dict[str, Any]:
        if not principal.master:
            raise _denied()
        return await self.admin.update(await self._body(request))

    async def delete(self, request: Request, principal: Principal) -> dict[str, Any]:
        if not principal.master:
            raise _denied()
        return await self.admin.delete(await self._body(request))

    async def list_keys(self, request: Request, principal: Principal) -> dict[str, Any]:
        if not principal.master:
            raise _denied()
        return await self.admin.list(dict(request.query_params))

    async def spend_report(self, request: Request, principal: Principal) -> dict[str, Any]:
        if not principal.master:
            raise _denied()
        return await self.admin.spend_report(dict(request.query_params))

    def routes(self) -> list[Route]:
        table: list[tuple[str, Op, str]] = [
            ("/key/generate", self.generate, "POST"),
            ("/key/info", self.info, "GET"),
            ("/key/update", self.update, "POST"),
            ("/key/delete", self.delete, "POST"),
            ("/key/list", self.list_keys, "GET"),
            ("/global/spend/report", self.spend_report, "GET"),
            ("/spend/report", self.spend_report, "GET"),
        ]
        return [Route(path, self._guard(path, op), methods=[method]) for path, op, method in table]
