"""Run the fault proxy: API server plus proxies on one asyncio loop, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from chaos_rec.errors import ConfigError, ProxyRequestError
from chaos_rec.toxiproxy.allowlist import Allowlist
from chaos_rec.toxiproxy.api import build_app
from chaos_rec.toxiproxy.collection import ProxyCollection

__all__ = ["ServerConfig", "load_config_file", "run", "serve"]


@dataclass(frozen=True)
class ServerConfig:
    """Everything the fault proxy server is started with."""

    host: str = "127.0.0.1"
    port: int = 8474
    config: Path | None = None
    seed: int | None = None
    allow_hosts: tuple[str, ...] = field(default_factory=tuple)
    allow_public_listen: bool = False
    loop: str = "auto"  # auto (uvloop when installed) | asyncio | uvloop

    def allowlist(self) -> Allowlist:
        """The allowlist for upstreams and listen addresses."""
        return Allowlist.build(self.allow_hosts, public_listen=self.allow_public_listen)


def load_config_file(path: Path) -> list[Any]:
    """Read a populate JSON file (a list of proxies); ConfigError when unreadable or malformed."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read toxiproxy config {path}: {exc.strerror or exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"toxiproxy config {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ConfigError(f"toxiproxy config {path} must be a JSON list of proxies")
    return data


async def serve(config: ServerConfig, stop: asyncio.Event | None = None) -> None:
    """Serve the API and proxies until ``stop`` is set (or SIGINT/SIGTERM)."""
    allowlist = config.allowlist()
    coll = ProxyCollection(allowlist, seed=config.seed)
    if config.config is not None:
        proxies = load_config_file(config.config)
        try:
            _, failed = await coll.populate(proxies)
        except ProxyRequestError as exc:
            failed = exc
        if failed is not None:  # a server that cannot start what its config names stops at once
            coll.shutdown()
            raise ConfigError(f"toxiproxy config {config.config}: {failed}") from failed
    app = build_app(coll)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        coll.shutdown()
        await runner.cleanup()
        raise ConfigError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
        ) from exc
    print(
        f"chaos-rec toxiproxy: API on http://{config.host}:{config.port} "
        f"({len(coll.proxies)} proxies, seed={config.seed}, "
        f"loop={type(asyncio.get_running_loop()).__module__})",
        file=sys.stderr,
        flush=True,
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        coll.shutdown()
        await runner.cleanup()


def run(config: ServerConfig) -> int:
    """Run the server in this process (on uvloop when available); returns the exit code."""
    if config.loop in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError as exc:
            if config.loop == "uvloop":
                raise ConfigError("--loop uvloop: uvloop is not installed") from exc
        else:
            uvloop.run(serve(config))
            return 0
    asyncio.run(serve(config))
    return 0
