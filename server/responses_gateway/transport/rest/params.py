"""Reading REST requests: the JSON body (bounded) and the query parameters of the GET endpoints."""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, HTTPConnection, Request

from responses_gateway.errors import GatewayError, Reason
from responses_gateway.v1 import responses_service_pb2 as rs

_HEADERS = "responses_gateway.headers"  # the scope key of `header`'s table


def header(request: HTTPConnection, name: str) -> str | None:
    """The request's first `name` header (`name` in lower case, as ASGI servers pass header names),
    from a table made once per request: Starlette's `request.headers.get` scans the list for each
    name, and raises and catches a KeyError for each one absent (most are, on most requests)."""
    scope = request.scope
    table: dict[str, str] | None = scope.get(_HEADERS)
    if table is None:
        table = {}
        for key, value in scope["headers"]:
            table.setdefault(key.decode("latin-1"), value.decode("latin-1"))
        scope[_HEADERS] = table
    return table.get(name)


async def read_json_body(request: Request, limit: int) -> Any:
    declared = header(request, "content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise _too_large(limit)
    except ClientDisconnect:
        # The client went away (or its body timed out) mid-body: its doing, not a gateway failure.
        raise GatewayError(
            Reason.CANCELLED, "The client disconnected before sending the whole body."
        ) from None
    if not body:
        raise GatewayError(Reason.INVALID_JSON, "The request body is empty; send a JSON object.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise GatewayError(
            Reason.INVALID_JSON,
            f"We could not parse the JSON body of your request. ({e}) The OpenAI API expects a JSON payload.",
        ) from None
    if not isinstance(data, dict):
        raise GatewayError(Reason.INVALID_JSON, "The request body must be a JSON object.")
    return data


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        Reason.REQUEST_TOO_LARGE, f"The request body is larger than the limit of {limit} bytes."
    )


def _bool(request: Request, name: str) -> bool | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise GatewayError(Reason.INVALID_REQUEST, f"Invalid value for '{name}': expected a boolean.", param=name)


# Plain decimal only: Python's int() would also take " 5", "1_000" and 4,300 digits of anything.
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_INT64 = (-(2**63), 2**63 - 1)  # the proto fields are int64: protobuf refuses anything beyond


def _int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    number = int(value) if _INTEGER.fullmatch(value) else None
    if number is None or not _INT64[0] <= number <= _INT64[1]:
        raise GatewayError(
            Reason.INVALID_REQUEST,
            f"Invalid value for '{name}': expected an integer between {_INT64[0]} and {_INT64[1]}.",
            param=name,
        )
    return number


def _includes(request: Request) -> list[str]:
    return [*request.query_params.getlist("include"), *request.query_params.getlist("include[]")]


def get_request(request: Request) -> rs.GetResponseRequest:
    out = rs.GetResponseRequest(response_id=request.path_params["response_id"])
    stream = _bool(request, "stream")
    if stream is not None:
        out.stream = stream
    after = _int(request, "starting_after")
    if after is not None:
        out.starting_after = after
    obfuscation = _bool(request, "include_obfuscation")
    if obfuscation is not None:
        out.include_obfuscation = obfuscation
    _set_includes(out, _includes(request))
    return out


def input_items_request(request: Request) -> rs.ListInputItemsRequest:
    out = rs.ListInputItemsRequest(response_id=request.path_params["response_id"])
    for name in ("after", "before"):
        cursor = request.query_params.get(name)
        if cursor:
            setattr(out, name, cursor)
    limit = _int(request, "limit")
    if limit is not None:
        out.limit = limit
    order = request.query_params.get("order")
    if order is not None:
        if order not in ("asc", "desc"):
            raise GatewayError(
                Reason.INVALID_REQUEST, "Invalid value for 'order': expected 'asc' or 'desc'.", param="order"
            )
        out.order = rs.LIST_ORDER_ASC if order == "asc" else rs.LIST_ORDER_DESC
    _set_includes(out, _includes(request))
    return out


def _set_includes(message: rs.GetResponseRequest | rs.ListInputItemsRequest, includes: list[str]) -> None:
    """`include` values through the codec's enum table, so unknown values are kept like anywhere else."""
    if includes:
        from responses_gateway import codec

        codec.from_json(message, {"include": includes})
