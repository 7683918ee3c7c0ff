"""`params.header`: a request's headers looked up from one table made per request, with what
Starlette's `request.headers.get` answers (the first of repeated names, None when absent)."""

from __future__ import annotations

from starlette.requests import Request

from responses_gateway.transport.rest.params import header


def _request(headers: list[tuple[bytes, bytes]]) -> Request:
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})


def test_header_answers_as_starlette_does() -> None:
    raw = [
        (b"x-request-id", b"req_first"),
        (b"authorization", b"Bearer sk-\xe9"),  # latin-1, as HTTP header bytes are read
        (b"x-request-id", b"req_second"),
        (b"content-length", b"12"),
    ]
    request = _request(raw)
    for name in ("x-request-id", "authorization", "content-length", "traceparent"):
        assert header(request, name) == request.headers.get(name), name
    assert header(request, "x-request-id") == "req_first" and header(request, "traceparent") is None


def test_the_table_is_made_once_per_request() -> None:
    request = _request([(b"authorization", b"Bearer a")])
    assert header(request, "authorization") == "Bearer a"
    request.scope["headers"] = [(b"authorization", b"Bearer b")]  # not read again
    assert header(request, "authorization") == "Bearer a"
    assert header(_request([(b"authorization", b"Bearer b")]), "authorization") == "Bearer b"
