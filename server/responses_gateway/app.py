"""Composition root: builds the store, providers, router and service from the config, and runs the
gRPC server and the REST shim side by side in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from responses_gateway.auth import Authenticator
from responses_gateway.config.loader import LoadedConfig
from responses_gateway.domain.service import ResponsesService
from responses_gateway.providers.registry import ProviderRegistry
from responses_gateway.routing.router import Router
from responses_gateway.store.factory import open_store
from responses_gateway.transport.grpc.server import build_grpc_server, set_serving
from responses_gateway.transport.rest.app import build_rest_app

log = logging.getLogger("responses_gateway")


@dataclass
class Listen:
    host: str
    grpc_port: int
    http_port: int
    grace_seconds: float = 30.0


class _ShimServer(uvicorn.Server):
    """uvicorn without its own signal handling: the gateway shuts both servers down together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Gateway:
    def __init__(self, loaded: LoadedConfig, listen: Listen) -> None:
        self.loaded = loaded
        self.listen = listen
        self.grpc_port = 0
        self.http_port = 0
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
        self.grpc, self.health, self.grpc_port = build_grpc_server(
            self.service, auth, address, settings.max_request_body_bytes
        )
        await self.grpc.start()
        rest = build_rest_app(self.service, auth, settings.max_request_body_bytes)
        config = uvicorn.Config(
            rest,
            host=self.listen.host,
            port=self.listen.http_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=math.ceil(self.listen.grace_seconds),
            http="httptools",
        )
        self.http = _ShimServer(config)
        self._http_task = asyncio.create_task(self.http.serve())
        while not self.http.started:
            if self._http_task.done():
                self._http_task.result()
                raise RuntimeError("the REST shim did not start")
            await asyncio.sleep(0.01)
        self.http_port = self.http.servers[0].sockets[0].getsockname()[1]
        await set_serving(self.health, True)
        log.info(
            "gRPC on %s:%d, REST on %s:%d", self.listen.host, self.grpc_port, self.listen.host, self.http_port
        )

    async def stop(self) -> None:
        """Stop taking new work, let in-flight calls and streams finish within the grace period."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        await set_serving(self.health, False)
        self.http.should_exit = True
        await asyncio.gather(
            self.grpc.stop(self.listen.grace_seconds), self._http_task, return_exceptions=True
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
            f"REST on http://{self.listen.host}:{self.http_port}/v1",
            flush=True,
        )
        await stop.wait()
        log.info("shutting down (grace %.0fs)", self.listen.grace_seconds)
        await self.stop()
