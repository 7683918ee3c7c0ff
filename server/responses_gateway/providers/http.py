"""What every HTTP adapter shares: a pooled client per deployment, SSE reading, transport errors."""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import AsyncIterator, Iterator

import httpx
from httpx_sse import EventSource

from responses_gateway.errors import GatewayError, Reason


def make_client(
    base_url: str, headers: dict[str, str], timeout: float | None, stream_timeout: float | None
) -> httpx.AsyncClient:
    """Pooled keep-alive connections; `read` covers the gap between two streamed chunks."""
    t = httpx.Timeout(timeout or 600.0, connect=10.0, read=stream_timeout or timeout or 600.0)
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=60)
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=t, limits=limits)


@contextlib.contextmanager
def transport_errors(provider: str) -> Iterator[None]:
    """Translate httpx's exceptions into domain errors, in one place."""
    try:
        yield
    except httpx.TimeoutException as e:
        raise GatewayError(
            Reason.UPSTREAM_TIMEOUT, f"{provider} did not answer in time ({type(e).__name__})"
        ) from e
    except httpx.ConnectError as e:
        raise GatewayError(Reason.UPSTREAM_UNAVAILABLE, f"could not connect to {provider}: {e}") from e
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
        raise GatewayError(
            Reason.UPSTREAM_UNAVAILABLE, f"{provider} closed the connection mid-response ({type(e).__name__})"
        ) from e
    except httpx.HTTPError as e:
        raise GatewayError(Reason.UPSTREAM_ERROR, f"{provider} request failed: {e}") from e


async def iter_sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The `data` of each server-sent event, as soon as its frame is complete."""
    async for sse in EventSource(response).aiter_sse():
        if sse.data:
            yield sse.data


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
