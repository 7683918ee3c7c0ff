"""The REST shim: OpenAI-shaped JSON and Server-Sent Events over the same domain service.

Every path is served with and without the `/v1` prefix, so an SDK pointed at `http://host:8080/v1`
or at `http://host:8080` works alike.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson
from google.protobuf.message import Message
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from responses_gateway import codec
from responses_gateway.auth import MASTER, Authenticator, Principal
from responses_gateway.chat_api import request as chat_request
from responses_gateway.chat_api.response import ChunkWriter, chat_completion
from responses_gateway.codec import shadow
from responses_gateway.contract.ids import new_id
from responses_gateway.domain.context import DROPPED_HEADER, REQUEST_ID_HEADER, CallContext
from responses_gateway.domain.service import ResponsesService
from responses_gateway.errors import GatewayError, Reason, as_gateway_error
from responses_gateway.health import Health
from responses_gateway.platform.gate import Gate
from responses_gateway.telemetry import metrics
from responses_gateway.telemetry.record import TRACEPARENT, TRACESTATE, CallRecord, client_request_id
from responses_gateway.transport.rest.errors import error_response, internal_error_response
from responses_gateway.transport.rest.params import get_request, header, input_items_request, read_json_body
from responses_gateway.transport.rest.sse import DONE, chat_frames, error_frame, frame
from responses_gateway.transport.rest.websocket import WebSocketShim
from responses_gateway.v1 import events_pb2, request_pb2
from responses_gateway.v1 import responses_service_pb2 as rs

log = logging.getLogger(__name__)

Event = events_pb2.ResponseStreamEvent
Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_REQUEST_ID = REQUEST_ID_HEADER.encode()
UNMATCHED = "unmatched"  # the one label of every path no route matches


def route_template(request: Request) -> str:
    """The metrics label of a request: its route's template (`/v1/responses/{response_id}`), never the
    path itself, so clients cannot add series (or put ids into labels) by asking for random paths."""
    route = request.scope.get("route")
    return route.path if isinstance(route, Route) else UNMATCHED


class JsonResponse(Response):
    """A JSON body with its headers as raw bytes at once: the same header list (and order: length,
    type, then `headers`) as `Response(media_type="application/json")` followed by
    `headers.update(headers)`, without building and scanning `MutableHeaders` per header."""

    media_type = "application/json"

    def __init__(self, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        raw = [(b"content-type", _JSON)]
        if status >= 200 and status not in (204, 304):  # Starlette's rule for content-length
            raw.insert(0, (b"content-length", str(len(body)).encode()))
        if headers:
            raw.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
        self.raw_headers = raw


_JSON = b"application/json"


def json_response(message: Message, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JsonResponse(codec.dumps(message), status, headers)


def _has_header(response: Response, name: bytes) -> bool:
    return any(key == name for key, _ in response.raw_headers)


def sse_response(
    events: AsyncGenerator[Event, None], ctx: CallContext, encode: Callable[[Event], bytes] = frame
) -> Response:
    """The events as Server-Sent Events. The domain raised any error before the first event already
    (a proper HTTP status); a later one is an `error` frame."""

    async def body() -> AsyncIterator[bytes]:
        sent = -1
        metrics.ACTIVE_STREAMS.inc()
        try:
            async for event in events:
                sent = event.sequence_number
                chunk = encode(event)
                if chunk:
                    yield chunk
            yield DONE
        except Exception as e:
            error = as_gateway_error(e)
            if error.reason == Reason.INTERNAL:
                log.exception("stream failed")
            yield error_frame(error, sent + 1)
        finally:
            metrics.ACTIVE_STREAMS.dec()
            try:
                await events.aclose()
            finally:
                ctx.record.close_call()

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={**_SSE_HEADERS, **ctx.headers()}
    )


def request_id(request: Request) -> str:
    """The call's request id: the caller's own `x-request-id` when valid (`_guard` refused an invalid
    one already), else a new one."""
    try:
        return client_request_id(header(request, REQUEST_ID_HEADER)) or new_id("req")
    except GatewayError:
        return new_id("req")


def principal_of(request: Request) -> Principal:
    """Who `_guard` found the caller to be."""
    return getattr(request.state, "principal", MASTER)


def call_context(request: Request) -> CallContext:
    """The call's context: its request id, who the caller is, and the caller's W3C trace context when
    it sent one."""
    ctx = CallContext(record=CallRecord(request_id(request)), principal=principal_of(request))
    traceparent = header(request, TRACEPARENT)
    if traceparent is not None:
        ctx.record.traceparent = traceparent[:128]
        ctx.record.tracestate = (header(request, TRACESTATE) or "")[:512] or None
    return ctx


async def _opened(
    ctx: CallContext, opening: Awaitable[AsyncGenerator[Event, None]]
) -> AsyncGenerator[Event, None]:
    """A stream's events once the domain opened it; a failure before that ends the call's record."""
    try:
        return await opening
    except BaseException:
        ctx.record.close_call()
        raise


async def _unary(ctx: CallContext, call: Awaitable[T]) -> T:
    try:
        return await call
    finally:
        ctx.record.close_call()


class RestShim:
    def __init__(
        self,
        service: ResponsesService,
        authenticator: Authenticator,
        max_body_bytes: int,
        health: Health | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.service = service
        self.auth = authenticator
        self.max_body = max_body_bytes
        self.health = health
        self.gate = gate  # virtual keys' limits and isolation; None: every caller is the master

    async def _admit(self, create: request_pb2.CreateResponseRequest, ctx: CallContext) -> None:
        if self.gate is not None:
            ctx.notes.update(await self.gate.admit_create(ctx.principal, create, ctx.record))

    async def _owned(self, request: Request) -> tuple[str, CallContext]:
        """The path's response id, once the caller may see it; and the call's context."""
        rid: str = request.path_params["response_id"]
        principal = principal_of(request)
        if self.gate is not None:
            await self.gate.check_owner(principal, rid)
        return rid, CallContext(principal=principal)

    async def _previous(self, request: Request, previous: str) -> CallContext:
        principal = principal_of(request)
        if self.gate is not None and previous:
            await self.gate.check_previous(principal, previous)
        return CallContext(principal=principal)

    def _guard(self, handler: Handler) -> Handler:
        """Authenticate, then map every error onto OpenAI's error JSON (the one place that does)."""

        async def guarded(request: Request) -> Response:
            try:
                request.state.principal = await self.auth.authenticate(header(request, "authorization"))
                client_request_id(header(request, REQUEST_ID_HEADER))  # a bad one: 400 at once
                response = await handler(request)
            except Exception as e:
                error = as_gateway_error(e)
                if error is not e and error.reason == Reason.INTERNAL:
                    log.exception("request failed: %s %s", request.method, request.url.path)
                metrics.observe_error(route_template(request), error)
                response = error_response(error)
            # The call's own id when the handler set it (the one sent upstream and logged), else a new one.
            if not _has_header(response, _REQUEST_ID):
                response.raw_headers.append((_REQUEST_ID, request_id(request).encode("latin-1")))
            return response

        return guarded

    async def create(self, request: Request) -> Response:
        body = await read_json_body(request, self.max_body)
        # The client's JSON goes to an OpenAI upstream as it came, and the upstream's reply back as it
        # came (codec/shadow.py), unless the gateway changes either.
        with shadow.keeping():
            create = codec.from_json(request_pb2.CreateResponseRequest(), body, keep=True)
            ctx = call_context(request)
            await self._admit(create, ctx)
            if create.stream:
                return sse_response(await _opened(ctx, self.service.stream(create, ctx)), ctx)
            response = await _unary(ctx, self.service.create(create, ctx))
            return json_response(response, headers=ctx.headers())

    async def get(self, request: Request) -> Response:
        get = get_request(request)
        _, ctx = await self._owned(request)
        if get.stream:
            return sse_response(await self.service.stream_get(get, ctx), ctx)
        return json_response(await self.service.get(get, ctx))

    async def delete(self, request: Request) -> Response:
        rid, ctx = await self._owned(request)
        return json_response(await self.service.delete(rs.DeleteResponseRequest(response_id=rid), ctx))

    async def cancel(self, request: Request) -> Response:
        rid, ctx = await self._owned(request)
        return json_response(await self.service.cancel(rs.CancelResponseRequest(response_id=rid), ctx))

    async def input_items(self, request: Request) -> Response:
        listing = input_items_request(request)
        _, ctx = await self._owned(request)
        return json_response(await self.service.list_input_items(listing, ctx))

    async def compact(self, request: Request) -> Response:
        body = await read_json_body(request, self.max_body)
        compact = codec.from_json(rs.CompactResponseRequest(), body)
        ctx = await self._previous(request, compact.previous_response_id)
        return json_response(await self.service.compact(compact, ctx))

    async def input_tokens(self, request: Request) -> Response:
        body = await read_json_body(request, self.max_body)
        count = codec.from_json(rs.CountInputTokensRequest(), body)
        ctx = await self._previous(request, count.previous_response_id)
        return json_response(await self.service.count_input_tokens(count, ctx))

    async def chat_completions(self, request: Request) -> Response:
        """The Chat Completions API through the Responses core: any chat client reaches every model."""
        body = await read_json_body(request, self.max_body)
        translated, dropped = chat_request.responses_request(body)
        create = codec.from_json(request_pb2.CreateResponseRequest(), translated)
        ctx = call_context(request)
        if dropped:
            ctx.notes[DROPPED_HEADER] = ",".join(dropped)
        await self._admit(create, ctx)
        if body.get("stream"):
            writer = ChunkWriter(bool((body.get("stream_options") or {}).get("include_usage")))
            events = await _opened(ctx, self.service.stream(create, ctx))
            return sse_response(events, ctx, lambda e: chat_frames(writer, e))
        completion = chat_completion(await _unary(ctx, self.service.create(create, ctx)))
        return JsonResponse(orjson.dumps(completion), headers=ctx.headers())

    async def models(self, request: Request) -> Response:
        return json_response(await self.service.list_models(CallContext()))

    def routes(self) -> list[BaseRoute]:
        table: list[tuple[str, Handler, list[str]]] = [
            ("/responses", self.create, ["POST"]),
            ("/responses/compact", self.compact, ["POST"]),
            ("/responses/input_tokens", self.input_tokens, ["POST"]),
            ("/responses/{response_id}", self.get, ["GET"]),
            ("/responses/{response_id}", self.delete, ["DELETE"]),
            ("/responses/{response_id}/cancel", self.cancel, ["POST"]),
            ("/responses/{response_id}/input_items", self.input_items, ["GET"]),
            ("/models", self.models, ["GET"]),
            ("/chat/completions", self.chat_completions, ["POST"]),
        ]
        routes: list[BaseRoute] = [
            Route(prefix + path, self._guard(handler), methods=methods)
            for prefix in ("/v1", "")
            for path, handler, methods in table
        ]
        # WebSocket mode: an upgrade on the path a create is POSTed to (transport/rest/websocket.py).
        ws = WebSocketShim(self.service, self.auth, self.max_body, self.gate)
        routes.extend(WebSocketRoute(prefix + "/responses", ws.endpoint) for prefix in ("/v1", ""))
        routes.append(Route("/healthz", self.healthz, methods=["GET"]))
        return routes

    async def healthz(self, request: Request) -> Response:
        """200 `{"status":"ok"}`, or 503 `{"status":"unavailable","reason":...}` while the store fails
        or the gateway is not serving (the same state the gRPC health service reports; health.py)."""
        reason = self.health.reason if self.health is not None else None
        if reason is None:
            return Response(b'{"status":"ok"}', media_type="application/json")
        body = orjson.dumps({"status": "unavailable", "reason": reason})
        return Response(body, status_code=503, media_type="application/json")


def metrics_route(authenticator: Authenticator | None) -> Route:
    """GET /metrics; with an authenticator, only for a caller holding the master key."""

    async def serve_metrics(request: Request) -> Response:
        if authenticator is not None:
            try:
                authenticator.check(request.headers.get("authorization"))
            except GatewayError as e:
                metrics.observe_error(route_template(request), e)
                return error_response(e)
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return Route("/metrics", serve_metrics, methods=["GET"])


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    reason = Reason.NOT_FOUND if exc.status_code == 404 else Reason.INVALID_REQUEST
    message = f"Invalid URL ({request.method} {request.url.path})"
    error = GatewayError(reason, message)
    metrics.observe_error(route_template(request), error)
    response = error_response(error)
    response.status_code = exc.status_code
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    return internal_error_response()


class HotRoutes:
    """The ASGI app in front of the Starlette one: the calls of the hot path (a create, a chat
    completion, a GET of one response) go straight to their route's endpoint; everything else (the
    other routes, WebSocket mode, 404 / 405, admin) goes through Starlette unchanged.

    Starlette's error middleware, exception middleware, router scan and per-route wrappers cost a
    measurable share of a unary call's CPU. The endpoints are the same `_guard`ed handlers, which
    turn every error into OpenAI's error JSON themselves; what still escapes one is answered the way
    `_unexpected` answers it (500 error JSON) and logged.
    The scope gets what Starlette's router would set (`route` for `route_template`, `path_params`),
    so handlers and metrics labels cannot tell the two paths apart."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self._posts: dict[str, Route] = {}
        self._by_id: list[tuple[str, Route]] = []  # (path prefix before the id, route)
        for route in app.routes:
            # The first route that would match wins, as in Starlette's own scan.
            if not isinstance(route, Route) or route.methods is None:
                continue
            if "POST" in route.methods and route.path in _HOT_POSTS:
                self._posts.setdefault(route.path, route)
            elif "GET" in route.methods and route.path in _HOT_BY_ID:
                prefix = route.path.removesuffix("{response_id}")
                if all(p != prefix for p, _ in self._by_id):
                    self._by_id.append((prefix, route))

    def _match(self, scope: Scope) -> tuple[Route, dict[str, str]] | None:
        if scope["type"] != "http" or scope.get("root_path"):  # mounted: Starlette strips root_path first
            return None
        method, path = scope["method"], scope["path"]
        if method == "POST":
            route = self._posts.get(path)
            return (route, {}) if route is not None else None
        if method == "GET":
            for prefix, route in self._by_id:
                if path.startswith(prefix):
                    rid = path[len(prefix) :]
                    # `{response_id}` is one non-empty segment; anything longer is another route's.
                    return (route, {"response_id": rid}) if rid and "/" not in rid else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hit = self._match(scope)
        if hit is None:
            await self.app(scope, receive, send)
            return
        route, params = hit
        scope["app"] = self.app
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = params
        try:
            response = await route.endpoint(Request(scope, receive, send))
            await response(scope, receive, send)
        except Exception:
            if not await _answered_500(scope, receive, send):
                raise  # the response had begun: the server closes the connection, so it never looks whole
            # Not re-raised (Starlette does): the server would close the connection with the request's
            # body unread, and the reset can destroy the 500 before the client reads it.
            log.exception("request failed: %s %s", scope["method"], scope["path"])


async def _answered_500(scope: Scope, receive: Receive, send: Send) -> bool:
    """Send the 500 error JSON, unless a response has begun already (the server refuses a second start)."""
    try:
        await internal_error_response()(scope, receive, send)
    except RuntimeError:
        return False
    return True


_HOT_POSTS = frozenset({"/v1/responses", "/responses", "/v1/chat/completions", "/chat/completions"})
_HOT_BY_ID = frozenset({"/v1/responses/{response_id}", "/responses/{response_id}"})


def _starlette(routes: list[Any]) -> Starlette:
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error, Exception: _unexpected})


def build_rest_app(
    service: ResponsesService,
    authenticator: Authenticator,
    max_body_bytes: int,
    extra_routes: list[Any] | None = None,
    *,
    health: Health | None = None,
    metrics_here: Route | None = None,
    gate: Gate | None = None,
) -> HotRoutes:
    """The REST API; `metrics_here` is the /metrics route when the metrics are not on a port of their
    own; `health` None: `/healthz` always says ok."""
    shim = RestShim(service, authenticator, max_body_bytes, health, gate)
    metrics_routes = [metrics_here] if metrics_here is not None else []
    return HotRoutes(_starlette([*shim.routes(), *metrics_routes, *(extra_routes or [])]))


def build_metrics_app(route: Route) -> Starlette:
    """What the separate metrics port serves: /metrics alone (anything else is a 404 error JSON)."""
    return _starlette([route])
