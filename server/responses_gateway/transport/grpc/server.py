"""The grpc.aio server: our services, the standard health service and reflection."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from responses_gateway.auth import Authenticator
from responses_gateway.domain.service import ResponsesService
from responses_gateway.transport.grpc.auth import AuthInterceptor
from responses_gateway.transport.grpc.intake import IntakeInterceptor
from responses_gateway.transport.grpc.servicer import ModelsServicer, ResponsesServicer
from responses_gateway.v1 import (
    models_pb2,
    models_pb2_grpc,
    responses_service_pb2,
    responses_service_pb2_grpc,
)

# grpc-stubs does not know the asyncio health servicer grpcio-health-checking ships.
AsyncHealthServicer: Any = health.aio.HealthServicer  # type: ignore[attr-defined]

SERVICE_NAMES = (
    responses_service_pb2.DESCRIPTOR.services_by_name["ResponsesService"].full_name,
    models_pb2.DESCRIPTOR.services_by_name["ModelsService"].full_name,
)

# Replies (a Response with a long output, a page of input items) may be larger than requests may be.
_MAX_SEND = 64 * 1024 * 1024


def build_grpc_server(
    service: ResponsesService,
    authenticator: Authenticator,
    address: str,
    max_request_bytes: int = _MAX_SEND,
) -> tuple[grpc.aio.Server, Any, int]:
    """`max_request_bytes`: gateway_settings.max_request_body_bytes, as REST enforces it; gRPC core
    refuses a larger message itself, with RESOURCE_EXHAUSTED (the code REQUEST_TOO_LARGE maps to)."""
    server = grpc.aio.server(
        # Authentication first: an unauthenticated caller learns nothing about its message.
        interceptors=[AuthInterceptor(authenticator), IntakeInterceptor()],
        options=[
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_send_message_length", _MAX_SEND),
            ("grpc.so_reuseport", 0),
        ],
    )
    responses_service_pb2_grpc.add_ResponsesServiceServicer_to_server(ResponsesServicer(service), server)
    models_pb2_grpc.add_ModelsServiceServicer_to_server(ModelsServicer(service), server)
    health_servicer = AsyncHealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(address)
    return server, health_servicer, port


async def set_serving(health_servicer: Any, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, status)
