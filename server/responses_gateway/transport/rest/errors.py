"""Domain errors as OpenAI's error JSON with the matching HTTP status (from the one error table)."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from responses_gateway.errors import GatewayError, Reason


def error_response(error: GatewayError) -> Response:
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["retry-after"] = f"{max(0, round(error.retry_after))}"
    return Response(
        orjson.dumps(error.openai_body()),
        status_code=error.http_status,
        media_type="application/json",
        headers=headers,
    )


def internal_error_response() -> Response:
    return error_response(
        GatewayError(Reason.INTERNAL, "The server had an error while processing your request.")
    )
