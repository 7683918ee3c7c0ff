"""The grpc.aio server: our services, the standard health service and reflection."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from responses_gateway.auth import Authenticator
from responses_gateway.domain.service import ResponsesService
from responses_gateway.transport.grpc.auth import AuthInterceptor
from responses_gateway.transport.grpc.method import MethodInterceptor
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

_MAX_MESSAGE = 64 * 1024 * 1024


def build_grpc_server(
    service: ResponsesService, authenticator: Authenticator, address: str
) -> tuple[grpc.aio.Server, Any, int]:
    server = grpc.aio.server(
        interceptors=[MethodInterceptor(), AuthInterceptor(authenticator)],
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
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
