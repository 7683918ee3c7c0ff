"""`serve --workers N`: a supervisor process and N worker processes, each a full Gateway (app.py).

The kernel spreads connections over the workers: every worker listens on the same REST and gRPC
ports with SO_REUSEPORT. The supervisor serves nothing; it

* resolves the ports (port 0 becomes one port for all) and keeps them reserved with sockets bound
  with SO_REUSEPORT but never listening, so a restarted worker can always bind them again and no
  other program takes them in between (a socket that does not listen is given no connections);
* prepares the run's directory: `bus/` (the workers' SQLite signal sockets, store/signals.py),
  `ready/` (a file per worker that serves) and `metrics/` (PROMETHEUS_MULTIPROC_DIR, so /metrics on
  any worker shows them all); it is new per run and removed at exit;
* with SQLite, opens the file first: migrations run once, and what a previous crash left running is
  failed before any worker starts (the workers then renew and reap leases as replicas do);
* starts the workers, says it serves once all do, restarts one that dies (after a back-off when it
  dies young), forwards SIGHUP to all, and on SIGTERM / SIGINT stops them all gracefully and exits
  when they are done.

Workers are fresh interpreters (`python -m responses_gateway.cli serve ...`) rather than forks:
prometheus-client picks its multiprocess value files at import, and nothing of the supervisor's
(event loop, threads, sockets) leaks into them. A worker dies with the supervisor (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import multiprocess

from responses_gateway.app import Listen, StartupError, WorkerRole
from responses_gateway.config.loader import LoadedConfig
from responses_gateway.config.models import StoreSettings
from responses_gateway.domain.leases import Leases
from responses_gateway.store.base import StoreUnavailable
from responses_gateway.store.sqlite import SqliteStore

log = logging.getLogger("responses_gateway.workers")

ENV_WORKER = "RESPONSES_GATEWAY_WORKER"  # the worker's slot, 0..N-1
ENV_RUN_DIR = "RESPONSES_GATEWAY_RUN_DIR"
ENV_SUPERVISOR = "RESPONSES_GATEWAY_SUPERVISOR"  # the supervisor's pid

_YOUNG_SECONDS = 10.0  # a worker that dies sooner than this after its start is restarted after a back-off
_MAX_BACKOFF_SECONDS = 30.0
_KILL_AFTER_SECONDS = 10.0  # past the grace period, a worker still running is killed


def _cgroup_cpus(path: str = "/sys/fs/cgroup/cpu.max") -> float | None:
    """The CPU quota of the container (cgroup v2 `cpu.max`: "<quota> <period>" or "max <period>")."""
    try:
        quota, period = Path(path).read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def default_workers() -> int:
    """One worker per CPU this process may run on, capped by the cgroup quota (a limit of 1.5 CPUs is
    one worker: a second would be throttled rather than add a core)."""
    cpus = len(os.sched_getaffinity(0))
    quota = _cgroup_cpus()
    if quota is not None:
        cpus = min(cpus, math.floor(quota))
    return max(1, cpus)


def worker_role_from_env() -> WorkerRole | None:
    """In a worker started by the supervisor: its role (and it dies with the supervisor)."""
    index = os.environ.get(ENV_WORKER)
    run_dir = os.environ.get(ENV_RUN_DIR)
    if index is None or run_dir is None:
        return None
    _die_with_parent()
    supervisor = os.environ.get(ENV_SUPERVISOR)
    if supervisor is not None and os.getppid() != int(supervisor):
        raise StartupError("the supervisor of this worker is gone")  # died before the prctl
    return WorkerRole(int(index), run_dir)


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _reserve(host: str, port: int, what: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port} for {what}: {e.strerror or e}") from None
    return sock


async def _recover_sqlite(settings: StoreSettings) -> None:
    """Migrate the file once, and fail what the previous run left running (no worker runs it now)."""
    store = SqliteStore(settings.path, ttl=settings.ttl)  # as the workers will open it
    try:
        await store.open()
        await Leases(store, settings).reap(math.inf)
    except StoreUnavailable as e:
        raise StartupError(f"cannot open the response store {settings.path}: {e.why}") from None
    finally:
        await store.close()


class _Worker:
    def __init__(self, index: int, proc: asyncio.subprocess.Process) -> None:
        self.index = index
        self.proc = proc
        self.started = time.monotonic()
        self.exited: asyncio.Task[int] = asyncio.ensure_future(proc.wait())


class Supervisor:
    def __init__(
        self, loaded: LoadedConfig, listen: Listen, workers: int, *, config_arg: str, log_level: str
    ) -> None:
        self.loaded = loaded
        self.listen = listen
        self.count = workers
        self.config_arg = config_arg  # as given: the workers share the supervisor's cwd
        self.log_level = log_level
        self.workers: dict[int, _Worker] = {}
        self._stop = asyncio.Event()
        self._backoff: dict[int, float] = {}

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._forward, signal.SIGHUP)
        host = self.listen.host
        reserved = [_reserve(host, self.listen.grpc_port, "gRPC")]
        self.grpc_port = reserved[0].getsockname()[1]
        try:
            reserved.append(_reserve(host, self.listen.http_port, "REST"))
        except StartupError:
            reserved[0].close()
            raise
        self.http_port = reserved[1].getsockname()[1]
        self.run_dir = tempfile.mkdtemp(prefix="responses-gateway-")
        try:
            for sub in ("bus", "ready", "metrics"):
                os.mkdir(os.path.join(self.run_dir, sub))
            store = self.loaded.config.gateway_settings.store
            if store.type == "sqlite":
                await _recover_sqlite(store)
            return await self._serve()
        finally:
            await self._stop_all()
            for sock in reserved:
                sock.close()
            shutil.rmtree(self.run_dir, ignore_errors=True)

    async def _serve(self) -> int:
        # The first worker alone, then the others: what fails every worker (the config's store
        # unreachable, a port taken) is said once, by the first, whose exit code the supervisor's is.
        for batch in ([0], range(1, self.count)):
            for index in batch:
                await self._spawn(index)
            failed = await self._wait_ready()
            if failed is not None:
                return failed
            if self._stop.is_set():
                return 0
        host = self.listen.host
        print(
            f"responses-gateway: serving gRPC on {host}:{self.grpc_port}, "
            f"REST on http://{host}:{self.http_port}/v1 ({self.count} workers, pids "
            f"{' '.join(str(w.proc.pid) for w in self.workers.values())})",
            flush=True,
        )
        await self._supervise()
        log.info("shutting down %d workers (grace %.0fs)", len(self.workers), self.listen.grace_seconds)
        return 0

    async def _spawn(self, index: int) -> None:
        env = dict(os.environ)
        env.update(
            {
                ENV_WORKER: str(index),
                ENV_RUN_DIR: self.run_dir,
                ENV_SUPERVISOR: str(os.getpid()),
                "PROMETHEUS_MULTIPROC_DIR": os.path.join(self.run_dir, "metrics"),
            }
        )
        cmd = [
            sys.executable,
            "-m",
            "responses_gateway.cli",
            "serve",
            "--config",
            self.config_arg,
            "--host",
            self.listen.host,
            "--grpc-port",
            str(self.grpc_port),
            "--http-port",
            str(self.http_port),
            "--grace",
            str(self.listen.grace_seconds),
            "--log-level",
            self.log_level,
            "--workers",
            "1",
        ]
        proc = await asyncio.create_subprocess_exec(*cmd, env=env)
        self.workers[index] = _Worker(index, proc)

    def _ready(self, worker: _Worker) -> bool:
        return os.path.exists(os.path.join(self.run_dir, "ready", str(worker.proc.pid)))

    async def _wait_ready(self) -> int | None:
        """Until every worker serves; a worker that exits first fails the start (its exit code)."""
        while not self._stop.is_set():
            for worker in self.workers.values():
                if worker.exited.done():  # it said why on stderr
                    rc = worker.exited.result()
                    log.debug("worker %d exited during start-up (exit code %d)", worker.index, rc)
                    return rc or 1
            if all(self._ready(w) for w in self.workers.values()):
                return None
            await asyncio.sleep(0.05)
        return None

    async def _supervise(self) -> None:
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set():
                exits = {w.exited: w for w in self.workers.values()}
                done, _ = await asyncio.wait([stopping, *exits], return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task in exits and not self._stop.is_set():
                        await self._restart(exits[task])
        finally:
            stopping.cancel()

    async def _restart(self, worker: _Worker) -> None:
        pid, rc = worker.proc.pid, worker.exited.result()
        self._forget(pid)
        lived = time.monotonic() - worker.started
        delay = 0.0
        if lived < _YOUNG_SECONDS:
            delay = min(_MAX_BACKOFF_SECONDS, max(0.5, 2 * self._backoff.get(worker.index, 0.25)))
        self._backoff[worker.index] = delay
        log.warning(
            "worker %d (pid %d) exited (exit code %d) after %.0fs; restarting%s",
            worker.index,
            pid,
            rc,
            lived,
            f" in {delay:.1f}s" if delay else "",
        )
        if delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                del self.workers[worker.index]
                return
        await self._spawn(worker.index)

    def _forget(self, pid: int) -> None:
        """What a worker that exited leaves in the run's directory: its live gauges, bus socket, ready
        mark (its counters stay: what it counted happened)."""
        multiprocess.mark_process_dead(pid, os.path.join(self.run_dir, "metrics"))  # type: ignore[no-untyped-call]
        for leftover in (f"bus/{pid}.sock", f"ready/{pid}"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.run_dir, leftover))

    def _forward(self, sig: signal.Signals) -> None:
        for worker in self.workers.values():
            if worker.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.send_signal(sig)

    async def _stop_all(self) -> None:
        """SIGTERM to every worker (each drains as a single gateway does), then wait for all."""
        self._forward(signal.SIGTERM)
        exits = [w.exited for w in self.workers.values()]
        if not exits:
            return
        _, pending = await asyncio.wait(exits, timeout=self.listen.grace_seconds + _KILL_AFTER_SECONDS)
        if pending:
            log.error("%d workers did not stop in time: killed", len(pending))
            self._forward(signal.SIGKILL)
            await asyncio.wait(pending)
        for worker in self.workers.values():
            self._forget(worker.proc.pid)
