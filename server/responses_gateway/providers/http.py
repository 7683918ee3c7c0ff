"""What every HTTP adapter shares: a pooled client per deployment, SSE reading, transport errors."""

from __future__ import annotations

import contextlib
import email.utils
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import orjson

from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers import h1
from responses_gateway.providers.h1 import Headers, Response
from responses_gateway.telemetry.record import outbound_headers

__all__ = ["Headers", "Response", "UpstreamClient", "iter_sse_data", "iter_sse_json", "make_client"]

CONNECT_TIMEOUT = 10.0
# asyncio may run a timer up to its clock's resolution early.
_CLOCK_SLACK = 0.001


class UpstreamClient:
    """A deployment's upstream: one base URL, fixed headers, a pooled keep-alive connection set.

    Requests go to `h1.Pool` (asyncio Protocols + httptools): the gateway never follows redirects,
    keeps cookies or needs HTTP/2, and httpx/httpcore cost more CPU per call than the rest of the
    path. `h1`'s docstring says what it keeps and what it leaves out.
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float | None,
        stream_timeout: float | None,
        max_bytes: int | None = None,
        provider: str = "the upstream",
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = [(k.lower(), v) for k, v in headers.items()]
        self._timeout = timeout or 600.0
        self._read_timeout = stream_timeout or self._timeout
        self._max_bytes = max_bytes
        self._provider = provider
        self._pool: h1.Pool | None = None

    def _origin(self) -> h1.Pool:
        pool = self._pool
        if pool is None:
            try:
                pool = self._pool = h1.Pool(self._base)
            except ValueError as e:
                raise GatewayError(
                    Reason.UPSTREAM_ERROR, f"{self._provider}: cannot call {self._base!r} ({e})"
                ) from None
        return pool

    async def _send(
        self,
        method: str,
        path: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, Any] | None,
        timeout: float | None,
    ) -> Response:
        pool = self._origin()
        fixed = self._headers
        if headers:
            given = [(k.lower(), v) for k, v in headers.items()]
            # A per-call header replaces the fixed one of the same name (never both on the wire).
            names = {k for k, _ in given}
            fixed = [*(h for h in fixed if h[0] not in names), *given]
        body = content or b""
        head = h1.request_head(
            method,
            pool.prefix + path + h1.query_string(params),
            pool.authority,
            [*fixed, *outbound_headers()],
            len(body) if body or method in ("POST", "PUT", "PATCH") else None,
        )
        # The deployment's timeouts hold on every transport; a caller's deadline (`timeout`) only
        # shortens them.
        total = self._timeout if timeout is None else min(timeout, self._timeout)
        read = self._read_timeout if timeout is None else min(timeout, self._read_timeout)
        return await pool.send(
            head,
            body,
            connect_timeout=min(CONNECT_TIMEOUT, total),
            read_timeout=read,
            write_timeout=total,
            max_bytes=self._max_bytes,
            provider=self._provider,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """A whole (non-streamed) response, its body read."""
        response = await self._send(method, path, content, headers, params, timeout)
        try:
            await response.aread()
        finally:
            response.aclose_now()
        return response

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[Response]:
        """A response whose body is read as it arrives; leaving the block closes it (and with it the
        upstream request, if it has not finished)."""
        response = await self._send(method, path, content, headers, params, timeout)
        try:
            yield response
        finally:
            response.aclose_now()

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.close()


def path_segment(value: str) -> str:
    """`value` as one URL path segment: percent-encoded whole (`/`, `?`, `#`, `%`, controls), so an id or
    a model name can never leave the path it is put in. `.` and `..` stay dot segments however they
    are encoded (URL parsers collapse them), so they are refused."""
    if value in ("", ".", ".."):
        raise GatewayError(Reason.INVALID_REQUEST, f"{value!r} cannot be part of an upstream URL.")
    return urllib.parse.quote(value, safe="")


def make_client(
    deployment: ResolvedDeployment, headers: Mapping[str, str], *, base_url: str | None = None
) -> UpstreamClient:
    """The pooled client of one deployment, with its timeouts and response size limit."""
    return UpstreamClient(
        base_url or deployment.api_base or "",
        headers,
        deployment.timeout,
        deployment.stream_timeout,
        max_bytes=deployment.max_response_bytes,
        provider=deployment.litellm_model,
    )


@contextlib.contextmanager
def transport_errors(provider: str, timeout: float | None = None) -> Iterator[None]:
    """Translate the upstream client's exceptions into domain errors, in one place. `timeout`: the
    caller's seconds left, which shortened the upstream's timeouts; a timeout once they are gone is
    the caller's deadline passing, not a slow upstream (and is not worth a retry)."""
    until = None if timeout is None else time.monotonic() + timeout
    try:
        yield
    except h1.Timeout as e:
        if until is not None and time.monotonic() >= until - _CLOCK_SLACK:
            raise GatewayError(Reason.DEADLINE_EXCEEDED, "The request's deadline passed.") from e
        raise GatewayError(Reason.UPSTREAM_TIMEOUT, f"{provider} did not answer in time ({e})") from e
    except h1.ConnectFailed as e:
        raise GatewayError(Reason.UPSTREAM_UNAVAILABLE, f"could not connect to {provider}: {e}") from e
    except h1.Disconnected as e:
        raise GatewayError(
            Reason.UPSTREAM_UNAVAILABLE, f"{provider} closed the connection mid-response ({e})"
        ) from e
    except h1.UpstreamHTTPError as e:
        raise GatewayError(Reason.UPSTREAM_ERROR, f"{provider} request failed: {e}") from e


async def iter_sse_data(response: Response) -> AsyncIterator[str]:
    """The `data` of each server-sent event, as soon as its frame is complete (the WHATWG event
    stream rules: lines end in CRLF, LF or CR; `data` lines join with LF; comments and other fields
    are skipped; an event without data is not one; an unterminated last event is dropped)."""
    content_type = (response.headers.get("content-type") or "").partition(";")[0]
    if "text/event-stream" not in content_type:
        raise h1.ProtocolViolation(f"expected a text/event-stream response, got {content_type!r}")
    pending = b""
    data: list[bytes] = []
    async for chunk in response.aiter_raw():
        buf = pending + chunk if pending else chunk
        if buf.endswith(b"\r"):  # maybe half a CRLF: decide with the next chunk
            buf, pending = buf[:-1], b"\r"
        else:
            pending = b""
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        last = lines.pop()  # after the last line end: the start of a line still arriving
        pending = last + pending if last else pending
        for line in lines:
            if not line:
                if data:
                    joined = data[0] if len(data) == 1 else b"\n".join(data)
                    data = []
                    if joined:
                        yield joined.decode("utf-8", "replace")
                continue
            if line.startswith(b"data"):
                field, _, value = line.partition(b":")
                if field == b"data":
                    data.append(value[1:] if value.startswith(b" ") else value)


async def iter_sse_json(response: Response, provider: str) -> AsyncIterator[Any]:
    """Each event's JSON payload, until the stream ends (or sends OpenAI-style `[DONE]`)."""
    async for data in iter_sse_data(response):
        if data == "[DONE]":
            return
        try:
            yield orjson.loads(data)
        except orjson.JSONDecodeError:
            raise GatewayError(
                Reason.UPSTREAM_ERROR, f"{provider} sent an event that is not JSON: {data[:200]!r}"
            ) from None


def retry_after_seconds(headers: Headers) -> float | None:
    """`retry-after-ms`, or `retry-after` as seconds or an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        with contextlib.suppress(ValueError):
            return float(ms) / 1000
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None
