"""Composition root: builds the store, providers, router and service from the config, and runs the
gRPC server and the REST shim side by side in one event loop.

Under `serve --workers N` (workers.py) each worker process is one Gateway with a `WorkerRole`: its
listeners share their ports with the other workers (SO_REUSEPORT), a SQLite store joins the workers'
signal bus, and REST responses name the worker in `x-gateway-worker`.

Start-up failures the operator can fix (the store's file or directory, a port in use) raise
`StartupError`, one line naming the path or port, which the CLI prints without a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from responses_gateway import gc_policy
from responses_gateway.auth import Authenticator
from responses_gateway.config.loader import LoadedConfig
from responses_gateway.config.models import GatewaySettings
from responses_gateway.domain.leases import Leases
from responses_gateway.domain.service import ResponsesService
from responses_gateway.health import Health, StoreProbe
from responses_gateway.platform.gate import Gate
from responses_gateway.platform.keys import KeyAdmin
from responses_gateway.providers.registry import ProviderRegistry
from responses_gateway.reload import CountedRouter, Generation, Reloader, ReloadReport
from responses_gateway.store.base import StoreUnavailable
from responses_gateway.store.factory import describe_store, key_store, open_store
from responses_gateway.store.sqlite import SqliteStore
from responses_gateway.telemetry import setup as telemetry_setup
from responses_gateway.transport.grpc.server import GrpcHealth, build_grpc_server
from responses_gateway.transport.grpc.threads import IoThreads
from responses_gateway.transport.rest.admin import AdminRoutes
from responses_gateway.transport.rest.admin_reload import reload_routes
from responses_gateway.transport.rest.app import build_metrics_app, build_rest_app, metrics_route
from responses_gateway.transport.rest.server import ShimServer, build_server

log = logging.getLogger("responses_gateway")


@dataclass(frozen=True)
class WorkerRole:
    """One worker of `serve --workers N`: its slot and the supervisor's directory for this run."""

    index: int
    run_dir: str

    @property
    def bus_dir(self) -> str:
        return os.path.join(self.run_dir, "bus")

    def ready(self) -> None:
        """Tell the supervisor this worker serves (it waits for every worker before saying so)."""
        Path(self.run_dir, "ready", str(os.getpid())).touch()


@dataclass
class Listen:
    host: str
    grpc_port: int
    http_port: int
    grace_seconds: float = 30.0
    worker: WorkerRole | None = None


class StartupError(Exception):
    """Why the gateway could not start, as one line for the operator."""


def _bind(host: str, port: int, what: str, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to (host, port) as the servers bind theirs (SO_REUSEADDR), or StartupError.
    `reuse_port`: one of the workers' listeners on a shared port (SO_REUSEPORT)."""
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP,
    # and with Nagle on, every small response waits ~40 ms for the peer's delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port} for {what}: {e.strerror or e}") from None
    return sock


class Gateway:
    def __init__(self, loaded: LoadedConfig, listen: Listen) -> None:
        self.loaded = loaded
        self.listen = listen
        self.grpc_port = 0
        self.http_port = 0
        self.metrics_port: int | None = None  # set when /metrics has a port of its own
        self.servers: list[ShimServer] = []  # the REST shim, then the metrics server if any
        self._stopped = asyncio.Event()
        self._reloads: set[asyncio.Task[ReloadReport]] = set()  # SIGHUP reloads under way
        self.grpc_threads = IoThreads()

    async def start(self) -> None:
        settings = self.loaded.config.gateway_settings
        self.health = Health()
        try:
            self.store = await open_store(settings.store, on_unavailable=self.health.store_failed)
        except StoreUnavailable as e:
            where = describe_store(settings.store)
            raise StartupError(f"cannot open the response store {where}: {e.why}") from None
        if self.listen.worker is not None and isinstance(self.store, SqliteStore):
            self.store.join_workers(self.listen.worker.bus_dir)  # before `shared` is read below
        self.gate = Gate(key_store(self.store), shared=self.store.shared)  # virtual keys, limits, spend
        self.gate.start()
        self.leases = Leases(self.store, settings.store)
        try:
            await self.leases.start()
        except StoreUnavailable as e:
            await self.gate.stop()
            await self.store.close()
            raise StartupError(f"the response store failed at start-up: {e.why}") from None
        self.providers = ProviderRegistry()
        telemetry_setup.configure(self.loaded.config)  # request log, traces
        router = CountedRouter(self.loaded, self.providers)
        self.service = ResponsesService(
            router,
            self.store,
            flush_seconds=settings.stream_event_flush_ms / 1000,
            leases=self.leases,
        )
        # SIGHUP and POST /config/reload swap in a new router and providers (reload.py).
        self.reloader = Reloader(
            self.loaded.path, Generation(1, self.loaded, router), self.service, self._swapped
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
        host = self.listen.host
        log.info(
            "gRPC on %s:%d, REST on %s:%d%s", host, self.grpc_port, host, self.http_port, self._metrics_note
        )

    async def _start_servers(self) -> None:
        settings = self.loaded.config.gateway_settings
        auth = Authenticator(self.loaded.master_key, self.gate.resolve)
        host, reuse = self.listen.host, self.listen.worker is not None
        if self.listen.grpc_port:
            # grpc's own bind error is several lines of C-core log: catch the usual case first.
            _bind(host, self.listen.grpc_port, "gRPC", reuse_port=reuse).close()
        address = f"{host}:{self.listen.grpc_port}"
        try:
            self.grpc, servicer, self.grpc_port = build_grpc_server(
                self.service,
                auth,
                address,
                self.health,
                settings.max_request_body_bytes,
                gate=self.gate,
                admin=KeyAdmin(self.gate.keys, self.gate),
                reuse_port=reuse,
            )
        except RuntimeError as e:  # taken between the check and now
            raise StartupError(f"cannot listen on {address} for gRPC: {e}") from None
        self.grpc_health = GrpcHealth(servicer, self.health)
        await self.grpc_health.sync()  # the stock servicer starts out saying SERVING for ""
        await self.grpc.start()
        self.grpc_threads.start()
        await self._start_http(settings, auth)

    async def _start_http(self, settings: GatewaySettings, auth: Authenticator) -> None:
        """The REST shim and, with gateway_settings.metrics.port, the metrics server beside it. Their
        sockets are bound here rather than by uvicorn, which logs the error and calls sys.exit."""
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
            [
                *reload_routes(self.reloader, self.loaded.master_key),
                *AdminRoutes(KeyAdmin(self.gate.keys, self.gate), auth).routes(),
            ],
            health=self.health,
            metrics_here=route if wanted.port is None else None,
            gate=self.gate,
        )
        host, grace = self.listen.host, self.listen.grace_seconds
        reuse = self.listen.worker is not None
        # Which worker answered: for operators and the tests that check calls land on every worker.
        headers = [("x-gateway-worker", str(os.getpid()))] if reuse else None
        sock = _bind(host, self.listen.http_port, "REST", reuse_port=reuse)
        self.servers = [build_server(rest, host, self.listen.http_port, settings.http, grace, headers)]
        self.http_port = await self.servers[0].start(sock)
        if wanted.port is not None:
            sock = _bind(host, wanted.port, "metrics", reuse_port=reuse)
            metrics_app = build_metrics_app(route)
            self.servers.append(build_server(metrics_app, host, wanted.port, settings.http, grace, headers))
            self.metrics_port = await self.servers[1].start(sock)

    def _swapped(self, generation: Generation) -> None:
        """A reload was applied: what new calls use. The listeners keep the settings they started with."""
        self.loaded = generation.loaded
        self.providers = generation.providers

    async def reload(self, source: str = "SIGHUP") -> ReloadReport:
        return await self.reloader.reload(source)

    def _reload_on_signal(self) -> None:
        if not hasattr(self, "reloader") or self._stopped.is_set():
            log.warning("SIGHUP ignored: the gateway is starting or shutting down")
            return
        task = asyncio.create_task(self.reload("SIGHUP"), name="config-reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    @property
    def _metrics_note(self) -> str:
        if self.metrics_port is None:
            return ""
        return f", metrics on http://{self.listen.host}:{self.metrics_port}/metrics"

    async def _abandon_start(self) -> None:
        """Undo what a failed start did, so the process can exit cleanly."""
        if hasattr(self, "grpc"):
            await self.grpc.stop(0)
        await self.grpc_threads.stop()
        for server in self.servers:
            server.should_exit = True
            await asyncio.gather(server.serving, return_exceptions=True)
        await self.service.aclose()
        await self.reloader.aclose()
        await self.providers.aclose()
        await self.leases.stop()
        await self.gate.stop()
        await self.store.close()

    async def stop(self) -> None:
        """Stop taking new work, let in-flight calls and streams finish within the grace period."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.set_serving(False)
        await self.grpc_health.sync()
        for server in self.servers:
            server.should_exit = True
        grace = self.listen.grace_seconds
        transports = asyncio.gather(
            self.grpc.stop(grace), *(server.serving for server in self.servers), return_exceptions=True
        )
        # Streams still running just before the grace period ends are ended with a terminal event
        # (and recorded) while the transports can still send it; only then do they close.
        margin = min(1.0, grace / 4)
        await self.service.drain(grace - margin, margin)
        await transports
        await self.grpc_threads.stop()
        await self.probe.stop()
        await asyncio.gather(*self._reloads, return_exceptions=True)
        await self.service.aclose()
        await self.reloader.aclose()
        await self.providers.aclose()
        await self.leases.stop()
        await self.gate.stop()  # the spend not written yet
        await self.store.close()

    async def serve_until_signalled(self) -> None:
        """Start, serve, reload the config on SIGHUP, and on SIGTERM / SIGINT shut down gracefully. The
        handlers are in place before the health service says SERVING, so no signal can kill a process
        that was reported ready (SIGHUP's default action would)."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_on_signal)
        await self.start()
        gc_policy.settle()
        if self.listen.worker is not None:
            log.info("worker %d (pid %d) serving", self.listen.worker.index, os.getpid())
            self.listen.worker.ready()  # the supervisor prints the serving line once all are
        else:
            print(
                f"responses-gateway: serving gRPC on {self.listen.host}:{self.grpc_port}, "
                f"REST on http://{self.listen.host}:{self.http_port}/v1{self._metrics_note}",
                flush=True,
            )
        await stop.wait()
        log.info("shutting down (grace %.0fs)", self.listen.grace_seconds)
        await self.stop()
