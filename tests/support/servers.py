"""Throwaway PostgreSQL and Redis servers on loopback, for the store tests.

The binaries come from Debian's packages (`make test-servers`, scripts/install-store-servers.sh); each
server gets a fresh data directory and a port the OS picked, and is stopped (and its files removed)
after. PostgreSQL refuses to run as root, so as root its processes run as the `postgres` user the
package created.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited at start (rc={proc.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port}")


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make test-servers`")
    return found[-1]


@dataclass
class Server:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    argv: list[str] = field(default_factory=list)  # how to start it again (`start`)
    # How `stop` ends it: connections dropped at once, data kept (postgres: SIGINT, its fast shutdown).
    stop_signal: int = signal.SIGTERM
    user: str | None = None

    def stop(self) -> None:
        """An outage as clients see it: connections dropped, then refused (the data stays, for `start`)."""
        self.proc.send_signal(self.stop_signal)
        self.proc.wait(20)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def start(self) -> None:
        """Start it again on the same port, with the same data."""
        self.proc = _start(self.argv, self.user)
        _wait_port(self.port, self.proc, self.argv[0])


@contextlib.contextmanager
def postgres_server() -> Iterator[Server]:
    root = os.geteuid() == 0
    user = "postgres" if root else None  # setuid in the child: signals reach postgres itself
    data = Path(tempfile.mkdtemp(prefix="rg-pg-"))
    if root:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    try:
        subprocess.run(
            [
                _pg_bin("initdb"),
                "-D",
                str(data / "db"),
                "-U",
                "gateway",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            user=user,
        )
        argv = [
            _pg_bin("postgres"),
            "-D",
            str(data / "db"),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={data}",
            "-c",
            "fsync=off",  # a test server: durability across power loss is not what is tested
            "-c",
            "max_connections=200",
        ]
        server = Server(
            f"postgresql://gateway@127.0.0.1:{port}/postgres",
            port,
            _start(argv, user),
            argv,
            signal.SIGINT,
            user,
        )
        try:
            _wait_port(port, server.proc, "postgres")
            _wait_pg_ready(port)
            yield server
        finally:
            _end(server.proc)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _wait_pg_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(
            [_pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "gateway"], capture_output=True
        )
        if done.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("postgres never became ready")


@contextlib.contextmanager
def redis_server() -> Iterator[Server]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed: run `make test-servers`")
    data = Path(tempfile.mkdtemp(prefix="rg-redis-"))
    port = free_port()
    # appendonly: a Redis that was stopped and started again (an outage) still has what it acknowledged.
    argv = [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--dir",
        str(data),
    ]
    server = Server(f"redis://127.0.0.1:{port}/0", port, _start(argv), argv)
    try:
        _wait_port(port, server.proc, "redis-server")
        yield server
    finally:
        _end(server.proc)
        shutil.rmtree(data, ignore_errors=True)


def _start(argv: list[str], user: str | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, user=user)


def _end(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    if proc.poll() is None:
        proc.kill()


_databases = iter(range(1, 1 << 30))


def new_database(server: Server) -> str:
    """The URL of an empty store on `server`: a new PostgreSQL database, or Redis flushed."""
    if server.url.startswith("redis"):
        import redis

        with redis.Redis.from_url(server.url) as client:
            client.flushall()
        return server.url
    name = f"t{next(_databases)}"
    subprocess.run(
        ["psql", server.url, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True
    )
    return server.url.rsplit("/", 1)[0] + f"/{name}"
