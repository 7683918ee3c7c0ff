"""Start-up failures an operator can fix: `responses-gateway serve` prints one line naming the path or
port on stderr and exits non-zero, with no traceback. Real subprocesses, real files and sockets."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from responses_gateway import codec
from responses_gateway.store.base import StoredResponse
from responses_gateway.store.sqlite import SqliteStore
from responses_gateway.v1 import items_pb2, response_pb2
from tests.support.process import GatewayProcess, clean_env, gateway_command

# Not even root may create a file in procfs (chmod would not stop root), so this directory is
# read-only for the gateway whoever runs the tests.
READ_ONLY_DIR = Path("/proc")


def write_mock_config(tmp: Path, store_path: Path | str, *, models: bool = True) -> Path:
    model_list = [{"model_name": "mock", "litellm_params": {"model": "openai/mock", "mock_response": "hi"}}]
    config = {
        "model_list": model_list if models else [],
        "gateway_settings": {"store": {"type": "sqlite", "path": str(store_path)}},
    }
    path = tmp / "gateway.yaml"
    path.write_text(json.dumps(config))
    return path


def serve(config: Path, *args: str, log_level: str = "warning") -> subprocess.CompletedProcess[str]:
    """Run `serve` to its end (each case here fails before serving; the timeout only stops a hang)."""
    cmd = [*gateway_command(), "serve", "--config", str(config), "--host", "127.0.0.1"]
    cmd += ["--grpc-port", "0", "--http-port", "0", "--log-level", log_level, *args]
    return subprocess.run(
        cmd, cwd=config.parent, env=clean_env(), capture_output=True, text=True, timeout=60, check=False
    )


def assert_one_line(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "serving" not in proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("responses-gateway: "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def test_store_in_a_read_only_directory(tmp_path):
    db = READ_ONLY_DIR / "responses-gateway-test.db"
    proc = serve(write_mock_config(tmp_path, db))
    assert_one_line(proc, f"cannot open the response store {db}:", "unable to open database file")
    assert not db.exists()


def test_store_whose_directory_is_a_file(tmp_path):
    (tmp_path / "data").write_text("a file, not a directory")
    db = tmp_path / "data" / "responses.db"
    proc = serve(write_mock_config(tmp_path, db))
    assert_one_line(proc, f"cannot open the response store {db}:", "not a directory")


@pytest.mark.parametrize("log_level", ["warning", "info"])
def test_store_file_that_is_not_a_database(tmp_path, log_level):
    db = tmp_path / "responses.db"
    garbage = b"this is not a SQLite file\n" * 400
    db.write_bytes(garbage)
    proc = serve(write_mock_config(tmp_path, db), log_level=log_level)
    if log_level == "info":
        # The usual start-up lines come first; the failure is still one line, and the last.
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("responses-gateway:")]
        assert errors == [proc.stderr.splitlines()[-1]]
        assert f"{db}: file is not a database" in errors[0]
    else:
        assert_one_line(proc, f"cannot open the response store {db}:", "file is not a database")
    assert db.read_bytes() == garbage  # left as it was, for whoever looks into it


def real_database(path: Path) -> None:
    """A store the gateway wrote, with enough rows to span many pages."""

    async def fill() -> None:
        store = SqliteStore(str(path))
        await store.open()
        for i in range(40):
            response = response_pb2.Response(id=f"resp_{i}", object="response", created_at=i)
            message = {"type": "message", "id": f"msg_{i}", "role": "user", "content": "x" * 3000}
            item = codec.from_json(items_pb2.Item(), message)
            await store.put(StoredResponse(response, [item]))
        await store.run_raw(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
        await store.close()

    asyncio.run(fill())


def test_store_file_truncated(tmp_path):
    db = tmp_path / "responses.db"
    real_database(db)
    size = db.stat().st_size
    assert size > 40 * 3000
    with db.open("r+b") as f:
        f.truncate(size // 2)
    proc = serve(write_mock_config(tmp_path, db))
    assert_one_line(proc, f"cannot open the response store {db}:", "malformed")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(("flag", "what"), [("--grpc-port", "gRPC"), ("--http-port", "REST")])
def test_port_in_use(tmp_path, taken_port, flag, what):
    proc = serve(write_mock_config(tmp_path, tmp_path / "responses.db"), flag, str(taken_port))
    assert_one_line(proc, f"cannot listen on 127.0.0.1:{taken_port} for {what}:", "in use")


def test_empty_model_list_is_warned_about(tmp_path):
    config = write_mock_config(tmp_path, tmp_path / "responses.db", models=False)
    gw = GatewayProcess(config, cwd=tmp_path).start()
    try:
        assert "model_list is empty" in gw.log
        assert httpx.get(f"{gw.http_base}/healthz", timeout=10).json() == {"status": "ok"}
    finally:
        gw.stop()
