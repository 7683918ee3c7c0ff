"""What every HTTP adapter shares: a pooled client per deployment, SSE reading, transport errors."""

from __future__ import annotations

import contextlib
import email.utils
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpcore
import httpx
import orjson
from httpx_sse import EventSource

from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.netio import AsyncioBackend
from responses_gateway.telemetry.record import outbound_headers

CONNECT_TIMEOUT = 10.0


class UpstreamClient:
    """A deployment's upstream: one base URL, fixed headers, a pooled keep-alive transport.

    Requests go straight to httpcore's connection pool (httpx's engine) on the asyncio backend in
    netio.py, and come back as httpx Responses. The httpx client layer (URL merging, cookie jar, auth
    and redirect loops, event hooks) is nothing a gateway needs — it never follows redirects or keeps
    cookies — and it cost more CPU per call than everything else on the path.
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
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=1000,
            max_keepalive_connections=64,
            keepalive_expiry=60,
            network_backend=AsyncioBackend(),
        )

    async def _send(
        self,
        method: str,
        path: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, Any] | None,
        timeout: float | None,
    ) -> httpx.Response:
        url = httpx.URL(self._base + path, params=params or None)
        request = httpx.Request(
            method,
            url,
            headers=[*self._headers, *(headers or {}).items(), *outbound_headers()],
            content=content,
        )
        # The deployment's timeouts hold on every transport; a caller's deadline (`timeout`) only
        # shortens them.
        total = self._timeout if timeout is None else min(timeout, self._timeout)
        read = self._read_timeout if timeout is None else min(timeout, self._read_timeout)
        core = httpcore.Request(
            method=method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=content or b"",
            # httpcore takes per-request timeouts from the request's extensions.
            extensions={
                "timeout": {
                    "connect": min(CONNECT_TIMEOUT, total),
                    "read": read,
                    "write": total,
                    "pool": total,
                }
            },
        )
        response = await self._pool.handle_async_request(core)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response, self._max_bytes, self._provider),
            extensions=response.extensions,
            request=request,
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
    ) -> httpx.Response:
        """A whole (non-streamed) response, its body read."""
        response = await self._send(method, path, content, headers, params, timeout)
        try:
            await response.aread()
        finally:
            await response.aclose()
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
    ) -> AsyncIterator[httpx.Response]:
        """A response whose body is read as it arrives; leaving the block closes it (and with it the
        upstream request, if it has not finished)."""
        response = await self._send(method, path, content, headers, params, timeout)
        try:
            yield response
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._pool.aclose()


class _Body(httpx.AsyncByteStream):
    """An upstream body, cut off with an error past `max_bytes`: the gateway never relays or stores
    more than it can send whole (a gRPC message over the limit would fail after the store said done)."""

    def __init__(self, response: httpcore.Response, max_bytes: int | None, provider: str) -> None:
        self._response = response
        self._max_bytes = max_bytes
        self._provider = provider

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen, limit = 0, self._max_bytes
        async for chunk in self._response.aiter_stream():
            if limit is not None:
                seen += len(chunk)
                if seen > limit:
                    raise GatewayError(
                        Reason.UPSTREAM_ERROR,
                        f"{self._provider} sent a response larger than the deployment's limit of {limit} "
                        "bytes (max_response_bytes).",
                    )
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()


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
def transport_errors(provider: str) -> Iterator[None]:
    """Translate httpx's exceptions into domain errors, in one place."""
    try:
        yield
    except (httpx.TimeoutException, httpcore.TimeoutException) as e:
        raise GatewayError(
            Reason.UPSTREAM_TIMEOUT, f"{provider} did not answer in time ({type(e).__name__})"
        ) from e
    except (httpx.ConnectError, httpcore.ConnectError) as e:
        raise GatewayError(Reason.UPSTREAM_UNAVAILABLE, f"could not connect to {provider}: {e}") from e
    except (
        httpx.RemoteProtocolError,
        httpx.ReadError,
        httpx.WriteError,
        httpcore.RemoteProtocolError,
        httpcore.ReadError,
        httpcore.WriteError,
    ) as e:
        raise GatewayError(
            Reason.UPSTREAM_UNAVAILABLE, f"{provider} closed the connection mid-response ({type(e).__name__})"
        ) from e
    except (httpx.HTTPError, httpcore.NetworkError, httpcore.ProtocolError) as e:
        raise GatewayError(Reason.UPSTREAM_ERROR, f"{provider} request failed: {e}") from e


async def iter_sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The `data` of each server-sent event, as soon as its frame is complete."""
    async for sse in EventSource(response).aiter_sse():
        if sse.data:
            yield sse.data


async def iter_sse_json(response: httpx.Response, provider: str) -> AsyncIterator[Any]:
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


def retry_after_seconds(headers: httpx.Headers) -> float | None:
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
