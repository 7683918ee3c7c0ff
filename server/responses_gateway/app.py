"""Composition root: builds the store, providers, router and service from the config, and runs the
gRPC server and the REST shim side by side in one event loop."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from responses_gateway.auth import Authenticator
from responses_gateway.config.loader import LoadedConfig
from responses_gateway.config.models import GatewaySettings
from responses_gateway.domain.service import ResponsesService
from responses_gateway.providers.registry import ProviderRegistry
from responses_gateway.routing.router import Router
from responses_gateway.store.factory import open_store
from responses_gateway.transport.grpc.server import build_grpc_server, set_serving
from responses_gateway.transport.rest.app import build_metrics_app, build_rest_app, metrics_route
from responses_gateway.transport.rest.server import ShimServer, build_server

log = logging.getLogger("responses_gateway")


@dataclass
class Listen:
    host: str
    grpc_port: int
    http_port: int
    grace_seconds: float = 30.0


class Gateway:
    def __init__(self, loaded: LoadedConfig, listen: Listen) -> None:
        self.loaded = loaded
        self.listen = listen
        self.grpc_port = 0
        self.http_port = 0
        self.metrics_port: int | None = None  # set when /metrics has a port of its own
        self.servers: list[ShimServer] = []  # the REST shim, then the metrics server if any
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        settings = self.loaded.config.gateway_settings
        self.store = await open_store(settings.store)
        self.providers = ProviderRegistry()
        self.service = ResponsesService(
            Router(self.loaded, self.providers),
            self.store,
            flush_seconds=settings.stream_event_flush_ms / 1000,
        )
        auth = Authenticator(self.loaded.master_key)
        address = f"{self.listen.host}:{self.listen.grpc_port}"
        self.grpc, self.health, self.grpc_port = build_grpc_server(self.service, auth, address)
        await self.grpc.start()
        await self._start_http(settings, auth)
        await set_serving(self.health, True)
        host = self.listen.host
        log.info(
            "gRPC on %s:%d, REST on %s:%d%s", host, self.grpc_port, host, self.http_port, self._metrics_note
        )

    async def _start_http(self, settings: GatewaySettings, auth: Authenticator) -> None:
        """The REST shim and, with gateway_settings.metrics.port, the metrics server beside it."""
        wanted = settings.metrics
        if wanted.require_key and not auth.enabled:
            log.warning(
                "gateway_settings.metrics.require_key is set but there is no master key: /metrics is open"
            )
        route = metrics_route(auth if wanted.require_key and auth.enabled else None)
        rest = build_rest_app(
            self.service,
            auth,
            settings.max_request_body_bytes,
            metrics_here=route if wanted.port is None else None,
        )
        host, grace = self.listen.host, self.listen.grace_seconds
        self.servers = [build_server(rest, host, self.listen.http_port, settings.http, grace)]
        self.http_port = await self.servers[0].start()
        if wanted.port is not None:
            metrics_app = build_metrics_app(route)
            self.servers.append(build_server(metrics_app, host, wanted.port, settings.http, grace))
            self.metrics_port = await self.servers[1].start()

    @property
    def _metrics_note(self) -> str:
        if self.metrics_port is None:
            return ""
        return f", metrics on http://{self.listen.host}:{self.metrics_port}/metrics"

    async def stop(self) -> None:
        """Stop taking new work, let in-flight calls and streams finish within the grace period."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        await set_serving(self.health, False)
        for server in self.servers:
            server.should_exit = True
        await asyncio.gather(
            self.grpc.stop(self.listen.grace_seconds),
            *(server.serving for server in self.servers),
            return_exceptions=True,
        )
        await self.service.aclose()
        await self.providers.aclose()
        await self.store.close()

    async def serve_until_signalled(self) -> None:
        """Start, serve, and on SIGTERM / SIGINT shut down gracefully. The handlers are in place before
        the health service says SERVING, so no signal can kill a process that was reported ready."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        print(
            f"responses-gateway: serving gRPC on {self.listen.host}:{self.grpc_port}, "
            f"REST on http://{self.listen.host}:{self.http_port}/v1{self._metrics_note}",
            flush=True,
        )
        await stop.wait()
        log.info("shutting down (grace %.0fs)", self.listen.grace_seconds)
        await self.stop()
