"""`responses-gateway serve --config FILE [--grpc-port N] [--http-port N] [--host H] [--workers N]`.

`--workers 1` is one process, the gateway itself; more start a supervisor (workers.py) whose worker
processes run this same command with `--workers 1` and their role in the environment."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import uvloop

from responses_gateway.app import Gateway, Listen, StartupError
from responses_gateway.config import ConfigError, load_config
from responses_gateway.workers import Supervisor, default_workers, worker_role_from_env


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="responses-gateway", description="OpenAI Responses API gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gRPC server and the REST shim")
    serve.add_argument("--config", required=True, help="gateway YAML file (LiteLLM-compatible model_list)")
    serve.add_argument("--host", default=None, help="address to listen on (default from the config: 0.0.0.0)")
    serve.add_argument("--grpc-port", type=int, default=None, help="gRPC port (default 50051)")
    serve.add_argument("--http-port", type=int, default=None, help="REST port (default 8080)")
    serve.add_argument("--grace", type=float, default=30.0, help="seconds in-flight calls get on SIGTERM")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes sharing the ports (default: one per CPU available to the container)",
    )
    return parser


def _worker_count(args: argparse.Namespace, store_path: str | None) -> int | str:
    """How many workers, or why the request cannot be served (one line)."""
    if args.workers is not None and args.workers < 1:
        return "--workers must be at least 1"
    wanted = args.workers if args.workers is not None else default_workers()
    if wanted > 1 and store_path == ":memory:":
        if args.workers is not None:
            return "--workers > 1 needs a store the workers can share; an in-memory SQLite store is not"
        return 1  # the default adapts: an in-memory store is one process's
    return wanted


async def _serve(args: argparse.Namespace) -> int:
    try:
        loaded = load_config(args.config)
    except ConfigError as e:
        print(f"responses-gateway: invalid configuration:\n{e}", file=sys.stderr)
        return 2
    log = logging.getLogger("responses_gateway")
    for warning in loaded.warnings:
        log.warning("%s", warning)
    for line in loaded.status_lines():
        log.info("model %s", line)
    settings = loaded.config.gateway_settings
    listen = Listen(
        host=args.host or settings.host,
        grpc_port=args.grpc_port if args.grpc_port is not None else settings.grpc_port,
        http_port=args.http_port if args.http_port is not None else settings.http_port,
        grace_seconds=args.grace,
    )
    try:
        listen.worker = worker_role_from_env()
        if listen.worker is None:
            store = settings.store
            workers = _worker_count(args, store.path if store.type == "sqlite" else None)
            if isinstance(workers, str):
                print(f"responses-gateway: {workers}", file=sys.stderr)
                return 2
            if workers > 1:
                supervisor = Supervisor(
                    loaded, listen, workers, config_arg=args.config, log_level=args.log_level
                )
                return await supervisor.run()
        await Gateway(loaded, listen).serve_until_signalled()
    except StartupError as e:
        print(f"responses-gateway: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_serve(args))


if __name__ == "__main__":
    sys.exit(main())
