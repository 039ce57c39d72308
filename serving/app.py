"""The model server's app factory: the one place its parts are composed."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from serving.breaker import CircuitBreaker
from serving.core import InferenceCore
from serving.errors import FeatureStoreError, ServingError
from serving.feature_sources import FeatureSource, redis_source
from serving.features import FeatureClient, LastKnownCache, UserFeatures
from serving.grpc_api import build_server, set_health
from serving.metrics import ServerMetrics
from serving.model import pick_device, size_threads
from serving.rest import RestAdapter
from serving.settings import SERVER_MECHANISMS, ServerSettings, Switches


def feature_codec() -> tuple[Callable[[int], str], Callable[[bytes], UserFeatures]]:
    """Key and decoder from training.featurestore (the single source of truth), imported once."""
    from training.errors import TrainingError
    from training.featurestore import decode_user, user_key

    def decode(raw: bytes) -> UserFeatures:
        try:
            f = decode_user(raw)
        except TrainingError as exc:
            raise FeatureStoreError(str(exc)) from exc
        return UserFeatures(list(f.history), f.top_category if f.top_category >= 0 else None)

    return user_key, decode


@dataclass
class ServerParts:
    """Everything a running model server holds."""

    settings: ServerSettings
    switches: Switches
    metrics: ServerMetrics
    core: InferenceCore
    source: FeatureSource


def build(settings: ServerSettings, source: FeatureSource | None = None) -> ServerParts:
    """Compose settings → switches, metrics, feature client, core (no model loaded yet)."""
    switches = Switches(SERVER_MECHANISMS, settings.disabled)
    metrics = ServerMetrics()
    metrics.set_breaker("closed")
    src = source or redis_source(settings.redis_url)
    key, decode = feature_codec()
    features = FeatureClient(
        src,
        key=key,
        decode=decode,
        switches=switches,
        budget_s=settings.feature_timeout_ms / 1000,
        breaker=CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s),
        cache=LastKnownCache(settings.cache_size),
        metrics=metrics,
    )
    device = pick_device(settings.device)
    core = InferenceCore(settings, switches, features, metrics, device=device)
    return ServerParts(settings, switches, metrics, core, src)


async def serve(settings: ServerSettings) -> int:
    """Run REST + gRPC on one loop until SIGTERM/SIGINT; exit 1 if the bundle is refused."""
    # with a model worker, this process runs no forward pass: one torch thread is plenty
    size_threads(1 if settings.model_process else settings.threads)
    parts = build(settings)
    core = parts.core
    rest = RestAdapter(core, settings.name, settings.admin_token)
    runner = web.AppRunner(rest.app(settings.max_body_bytes), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.http_port)
    await site.start()
    grpc_server, health = build_server(
        core, settings.name, settings.host, settings.grpc_port, settings.max_body_bytes
    )
    await set_health(health, False)
    await grpc_server.start()
    core.batcher.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    code = 0

    def model_lost(reason: str) -> None:  # fail fast, like a replica that lost its GPU
        nonlocal code
        print(f"error: {settings.name}: {reason}; shutting down", file=sys.stderr, flush=True)
        code = 1
        stop.set()

    core.on_model_lost = model_lost
    try:
        try:
            model = await loop.run_in_executor(None, core.load, settings.bundle)
        except ServingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        core.set_model(model)
        gc.collect()
        gc.freeze()  # model/library objects never die: keep them out of GC passes (p99 pauses)
        with contextlib.suppress(FeatureStoreError):  # warm one connection; never gates readiness
            await parts.source.get("cr:v1:meta", timeout_s=settings.feature_timeout_ms / 1000)
        await set_health(health, True)
        print(
            f"{settings.name}: ready model_version={model.model_version} device={core.device} "
            f"http={settings.host}:{settings.http_port} grpc={settings.host}:{settings.grpc_port}",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
    finally:
        await set_health(health, False)
        await grpc_server.stop(grace=1.0)
        await core.batcher.stop()
        await runner.cleanup()
        await parts.source.close()
        core.close()
    return code
