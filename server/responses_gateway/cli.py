"""`responses-gateway serve --config FILE [--grpc-port N] [--http-port N] [--host H]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from responses_gateway.app import Gateway, Listen, StartupError
from responses_gateway.config import ConfigError, load_config


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
    return parser


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
    return asyncio.run(_serve(args))


if __name__ == "__main__":
    sys.exit(main())
