"""The grpc.aio server: our services, the standard health service and reflection."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from responses_gateway.auth import Authenticator
from responses_gateway.domain.service import ResponsesService
from responses_gateway.health import Health
from responses_gateway.platform.gate import Gate
from responses_gateway.platform.keys import KeyAdmin
from responses_gateway.transport.grpc.admin import AdminServicer
from responses_gateway.transport.grpc.intercept import CallInterceptor
from responses_gateway.transport.grpc.servicer import ModelsServicer, ResponsesServicer
from responses_gateway.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    models_pb2,
    models_pb2_grpc,
    responses_service_pb2,
    responses_service_pb2_grpc,
)

# grpc-stubs does not know the asyncio servicers grpcio-health-checking and grpcio-reflection ship.
AsyncHealthServicer: Any = health.aio.HealthServicer  # type: ignore[attr-defined]
AsyncReflectionServicer: Any = reflection.aio.ReflectionServicer  # type: ignore[attr-defined]

SERVICE_NAMES = (
    responses_service_pb2.DESCRIPTOR.services_by_name["ResponsesService"].full_name,
    models_pb2.DESCRIPTOR.services_by_name["ModelsService"].full_name,
)

ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name

# Health service name for liveness (and start-up) probes: SERVING from the moment the gateway has
# started, whatever the store says, and never NOT_SERVING again. "" and the services above also say
# NOT_SERVING while the store fails (readiness); a liveness probe on them would restart a pod for a
# store outage, which a restart does not cure. A wedged process still fails it: it does not answer.
LIVENESS_SERVICE = "liveness"

# Replies (a Response with a long output, a page of input items) may be larger than requests may be.
_MAX_SEND = 64 * 1024 * 1024
# Trailer of a health Check answered NOT_SERVING: why (the health protocol has no field for it).
REASON_TRAILER = "health-reason"


class _GenericOnly:
    """The server as the generated `add_*_to_server` functions see it: they register each service's
    handlers twice, as a generic handler and as registered methods, and only the generic one is
    kept. grpc.aio's server keeps one request future per registered method (plus one for all the
    generic ones) and awaits them all with asyncio.wait on every call it takes, so each call paid
    for every method the server has (~20). The handlers are the same either way."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler[Any, Any]]) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        pass


class _HealthServicer(AsyncHealthServicer):  # type: ignore[misc]
    """The stock servicer (statuses set by `GrpcHealth`), plus the reason in a trailer of Check."""

    def __init__(self, health: Health | None) -> None:
        super().__init__()
        self._health = health

    async def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> Any:
        reply = await super().Check(request, context)
        reason = self._health.reason if self._health is not None else None
        if reason is not None and reply.status != health_pb2.HealthCheckResponse.SERVING:
            # Metadata values must be printable ASCII.
            text = "".join(c if " " <= c <= "~" else "?" for c in reason)
            context.set_trailing_metadata(((REASON_TRAILER, text),))
        return reply


def build_grpc_server(
    service: ResponsesService,
    authenticator: Authenticator,
    address: str,
    health: Health | None = None,
    max_request_bytes: int = _MAX_SEND,
    *,
    gate: Gate | None = None,
    admin: KeyAdmin | None = None,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, Any, int]:
    """`max_request_bytes`: gateway_settings.max_request_body_bytes, as REST enforces it; gRPC core
    refuses a larger message itself, with RESOURCE_EXHAUSTED (the code REQUEST_TOO_LARGE maps to).
    `reuse_port`: a worker of `serve --workers N`, one of several listeners the kernel spreads
    connections over (SO_REUSEPORT); otherwise a port another process holds is an error."""
    server = grpc.aio.server(
        interceptors=[CallInterceptor(authenticator)],
        options=[
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_send_message_length", _MAX_SEND),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
    )
    generic: Any = _GenericOnly(server)
    responses_service_pb2_grpc.add_ResponsesServiceServicer_to_server(
        ResponsesServicer(service, gate), generic
    )
    names: tuple[str, ...] = SERVICE_NAMES
    if admin is not None:
        admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(admin), generic)
        names = (*names, ADMIN_SERVICE)
    models_pb2_grpc.add_ModelsServiceServicer_to_server(ModelsServicer(service), generic)
    health_servicer = _HealthServicer(health)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, generic)
    # What reflection.enable_server_reflection does for a grpc.aio server, to `generic` (which that
    # function would not recognise as one).
    reflected = (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(AsyncReflectionServicer(reflected), generic)
    port = server.add_insecure_port(address)
    return server, health_servicer, port


async def set_serving(health_servicer: Any, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, status)


class GrpcHealth:
    """Keeps the standard health service in step with `health`: SERVING for "" and every service
    while `health.reason` is None, NOT_SERVING otherwise (the reason is in the gateway's log and in
    REST `/healthz`; the health protocol has no field for it)."""

    def __init__(self, servicer: Any, health: Health) -> None:
        self.servicer = servicer
        self.health = health
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()
        health.watch(self._changed)

    def _changed(self) -> None:
        task = asyncio.ensure_future(self.sync())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def sync(self) -> None:
        # Each sync applies the state as it is when it runs, so the last one leaves the latest.
        async with self._lock:
            await set_serving(self.servicer, self.health.reason is None)
            if self.health.serving:
                await self.servicer.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
