"""``chaos-rec toxiproxy`` and ``python -m chaos_rec.toxiproxy``: run the fault proxy standalone."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos_rec.errors import ChaosRecError, ConfigError, OneLineParser, is_ctrl_c, settle_interrupt

__all__ = ["add_arguments", "config_from_args", "main", "register"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's options (stable: the stack runtime starts it with them)."""
    parser.add_argument("--host", default="127.0.0.1", help="API host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="API port (default 8474)")
    parser.add_argument("--config", type=Path, default=None, help="populate JSON file")
    parser.add_argument(
        "--seed", type=int, default=None, help="make toxicity and jitter reproducible"
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also allow upstreams on this IP, CIDR or host name (loopback is always allowed)",
    )
    parser.add_argument(
        "--allow-public-listen",
        action="store_true",
        help="let proxies bind non-loopback addresses (0.0.0.0 binds 127.0.0.1 otherwise)",
    )
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop (auto: uvloop when installed)",
    )


def config_from_args(args: argparse.Namespace) -> Any:
    """Turn parsed options into a ServerConfig; ConfigError on bad values."""
    from chaos_rec.toxiproxy.server import ServerConfig

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {args.port}")
    config = ServerConfig(
        host=args.host,
        port=args.port,
        config=args.config,
        seed=args.seed,
        allow_hosts=tuple(args.allow_host),
        allow_public_listen=args.allow_public_listen,
        loop=args.loop,
    )
    config.allowlist()  # validate entries now
    return config


def _run(args: argparse.Namespace) -> int:
    import logging

    from chaos_rec.toxiproxy.server import run

    config = config_from_args(args)  # bad options fail before anything is set up
    logging.basicConfig(
        level=logging.WARNING, format="chaos-rec toxiproxy: %(levelname)s %(message)s"
    )
    return run(config)


def register(subparsers: Any) -> None:
    """Add the ``toxiproxy`` sub-command to the ``chaos-rec`` CLI."""
    parser = subparsers.add_parser(
        "toxiproxy",
        help="run the Toxiproxy-compatible fault proxy",
        description="Run the Toxiproxy-compatible fault proxy (HTTP API + TCP proxies).",
    )
    add_arguments(parser)
    parser.set_defaults(func=_run)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m chaos_rec.toxiproxy``."""
    parser = OneLineParser(
        prog="python -m chaos_rec.toxiproxy",
        description="Run the Toxiproxy-compatible fault proxy (HTTP API + TCP proxies).",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ChaosRecError as exc:
        print(f"chaos-rec toxiproxy: error: {exc}", file=sys.stderr)
        return 1
    except BaseException as exc:
        if not is_ctrl_c(exc):
            raise
        return settle_interrupt()
