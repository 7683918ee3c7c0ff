"""`POST /config/reload`: reload the config file now, as SIGHUP does (master key only).

200 with what the reload did (`applied`, `generation`, `needs_restart`, `warnings`, `models`); a file
that was refused is OpenAI's error JSON, 400 `invalid_config`, naming the problem (the previous config
keeps serving). Without a `general_settings.master_key` the endpoint is refused (403): an open admin
API on a gateway with no key would let anyone make it re-read its file; SIGHUP still works.

The reload itself lives at the composition root (`responses_gateway/reload.py`); this module sees it
only through the `Reloads` protocol, as transports see nothing above them.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responses_gateway.auth import Authenticator
from responses_gateway.domain.context import REQUEST_ID_HEADER
from responses_gateway.errors import GatewayError, Reason, as_gateway_error
from responses_gateway.telemetry import metrics
from responses_gateway.telemetry.record import client_request_id
from responses_gateway.transport.rest.app import request_id, route_template
from responses_gateway.transport.rest.errors import error_response

log = logging.getLogger(__name__)
PATH = "/config/reload"
SOURCE = "admin API"


class ReloadOutcome(Protocol):
    @property
    def applied(self) -> bool: ...

    @property
    def message(self) -> str: ...

    def as_json(self) -> dict[str, Any]: ...


class Reloads(Protocol):
    async def reload(self, source: str) -> ReloadOutcome: ...


def reload_routes(reloads: Reloads, master_key: str | None) -> list[Route]:
    """The endpoint, checked against the master key alone (never a virtual key)."""
    master = Authenticator(master_key)

    async def reload(request: Request) -> Response:
        try:
            if not master.enabled:
                raise GatewayError(
                    Reason.PERMISSION_DENIED,
                    "The admin API needs general_settings.master_key; without one, reload with SIGHUP.",
                )
            master.check(request.headers.get("authorization"))
            client_request_id(request.headers.get(REQUEST_ID_HEADER))
            outcome = await reloads.reload(SOURCE)
            if not outcome.applied:
                raise GatewayError(
                    Reason.INVALID_REQUEST,
                    f"The new config was refused; the previous one keeps serving. {outcome.message}",
                    param="config",
                    code="invalid_config",
                )
            response = Response(orjson.dumps(outcome.as_json()), media_type="application/json")
        except Exception as e:
            error = as_gateway_error(e)
            if error is not e and error.reason == Reason.INTERNAL:
                log.exception("config reload request failed")
            metrics.observe_error(route_template(request), error)
            response = error_response(error)
        response.headers[REQUEST_ID_HEADER] = request_id(request)
        return response

    return [Route(PATH, reload, methods=["POST"])]
