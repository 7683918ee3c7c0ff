"""Composition root: builds the store, providers, router and service from the config, and runs the
gRPC server and the REST shim side by side in one event loop.

Start-up failures the operator can fix (the store's file or directory, a port in use) raise
`StartupError`, one line naming the path or port, which the CLI prints without a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from responses_gateway.auth import Authenticator
from responses_gateway.config.loader import LoadedConfig
from responses_gateway.domain.service import ResponsesService
from responses_gateway.health import Health, StoreProbe
from responses_gateway.providers.registry import ProviderRegistry
from responses_gateway.routing.router import Router
from responses_gateway.store.base import StoreUnavailable
from responses_gateway.store.factory import open_store
from responses_gateway.transport.grpc.server import GrpcHealth, build_grpc_server
from responses_gateway.transport.rest.app import build_rest_app

log = logging.getLogger("responses_gateway")


@dataclass
class Listen:
    host: str
    grpc_port: int
    http_port: int
    grace_seconds: float = 30.0


class StartupError(Exception):
    """Why the gateway could not start, as one line for the operator."""


def _bind(host: str, port: int, what: str) -> socket.socket:
    """A TCP socket bound to (host, port) as the servers bind theirs (SO_REUSEADDR), or StartupError."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port} for {what}: {e.strerror or e}") from None
    return sock


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
        self.health = Health()
        try:
            self.store = await open_store(settings.store, on_unavailable=self.health.store_failed)
        except StoreUnavailable as e:
            raise StartupError(f"cannot open the response store {settings.store.path}: {e.why}") from None
        self.providers = ProviderRegistry()
        self.service = ResponsesService(
            Router(self.loaded, self.providers),
            self.store,
            flush_seconds=settings.stream_event_flush_ms / 1000,
        )
        self.probe = StoreProbe(self.store, self.health, settings.store.probe_seconds)
        try:
            await self._start_servers()
        except BaseException:
            await self._abandon_start()
            raise
        self.health.set_serving(True)
        await self.grpc_health.sync()
        self.probe.start()
        log.info(
            "gRPC on %s:%d, REST on %s:%d", self.listen.host, self.grpc_port, self.listen.host, self.http_port
        )

    async def _start_servers(self) -> None:
        settings = self.loaded.config.gateway_settings
        auth = Authenticator(self.loaded.master_key)
        host = self.listen.host
        if self.listen.grpc_port:
            # grpc's own bind error is several lines of C-core log: catch the usual case first.
            _bind(host, self.listen.grpc_port, "gRPC").close()
        address = f"{host}:{self.listen.grpc_port}"
        try:
            self.grpc, servicer, self.grpc_port = build_grpc_server(self.service, auth, address, self.health)
        except RuntimeError as e:  # taken between the check and now
            raise StartupError(f"cannot listen on {address} for gRPC: {e}") from None
        self.grpc_health = GrpcHealth(servicer, self.health)
        await self.grpc_health.sync()  # the stock servicer starts out saying SERVING for ""
        await self.grpc.start()
        # Bound here rather than by uvicorn, which logs the error and calls sys.exit.
        sock = _bind(host, self.listen.http_port, "REST")
        rest = build_rest_app(self.service, auth, settings.max_request_body_bytes, health=self.health)
        config = uvicorn.Config(
            rest,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=math.ceil(self.listen.grace_seconds),
            http="httptools",
        )
        self.http = _ShimServer(config)
        self._http_task = asyncio.create_task(self.http.serve(sockets=[sock]))
        while not self.http.started:
            if self._http_task.done():
                self._http_task.result()
                raise RuntimeError("the REST shim did not start")
            await asyncio.sleep(0.01)
        self.http_port = self.http.servers[0].sockets[0].getsockname()[1]

    async def _abandon_start(self) -> None:
        """Undo what a failed start did, so the process can exit cleanly."""
        if hasattr(self, "grpc"):
            await self.grpc.stop(0)
        await self.service.aclose()
        await self.providers.aclose()
        await self.store.close()

    async def stop(self) -> None:
        """Stop taking new work, let in-flight calls and streams finish within the grace period."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.set_serving(False)
        await self.grpc_health.sync()
        self.http.should_exit = True
        grace = self.listen.grace_seconds
        transports = asyncio.gather(self.grpc.stop(grace), self._http_task, return_exceptions=True)
        # Streams still running just before the grace period ends are ended with a terminal event
        # (and recorded) while the transports can still send it; only then do they close.
        margin = min(1.0, grace / 4)
        await self.service.drain(grace - margin, margin)
        await transports
        await self.probe.stop()
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
