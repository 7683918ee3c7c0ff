"""The real gateway in the test process, on an event loop of its own in a background thread, so a
synchronous test can talk to it over real sockets and still look inside (its store, its providers)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any


class InProcessGateway:
    def __init__(self, config: Path, grace_seconds: float = 2) -> None:
        from responses_gateway.app import Gateway, Listen
        from responses_gateway.config import load_config

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.gw = Gateway(load_config(config), Listen("127.0.0.1", 0, 0, grace_seconds=grace_seconds))
        self.run(self.gw.start())

    def run(self, coro: Any, timeout: float = 20) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.gw.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.gw.grpc_port}"

    def close(self) -> None:
        try:
            self.run(self.gw.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
