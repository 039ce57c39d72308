"""Gateway HTTP server: /v1/recommend, /healthz, /readyz, /metrics, /openapi.json, /admin/*."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from serving.errors import (
    BadRequest,
    DeadlineExceeded,
    NoReplicaAvailable,
    Overloaded,
    ServingError,
)
from serving.gateway.admission import Admission
from serving.gateway.pool import ReplicaPool
from serving.gateway.router import Router
from serving.metrics import CONTENT_TYPE, GatewayMetrics
from serving.rest import (
    MAX_BODY_KEY,
    json_body,
    openapi_route,
    read_json_object,
    resilience_routes,
)
from serving.settings import GATEWAY_MECHANISMS, GatewaySettings, Switches

# The one error → HTTP status table of the gateway.
STATUS: dict[type[ServingError], int] = {
    BadRequest: 400,
    Overloaded: 503,
    NoReplicaAvailable: 503,
    DeadlineExceeded: 504,
}
MAX_BODY = 64 * 1024
OPENAPI = "gateway/openapi.json"  # this API's OpenAPI 3 document, served at /openapi.json


def parse_recommend(body: dict[str, Any], max_k: int) -> tuple[int, int, str | None]:
    """Validate {"user_id": int, "k": int, "query": str|null}."""
    user_id = body.get("user_id")
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise BadRequest("'user_id' must be an integer")
    if not -(2**63) <= user_id < 2**63:
        raise BadRequest(f"'user_id' {user_id} does not fit INT64")
    k = body.get("k", 10)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= max_k:
        raise BadRequest(f"'k' must be an integer in 1..{max_k}")
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        raise BadRequest("'query' must be a string or null")
    if query is not None and not query.isascii():
        try:
            query.encode("utf-8")
        except UnicodeEncodeError as exc:  # JSON may carry a lone surrogate ("\ud800")
            raise BadRequest(f"'query' is not valid Unicode ({exc.reason})") from exc
    unknown = set(body) - {"user_id", "k", "query"}
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    return user_id, k, query


class Gateway:
    """Holds the pool, the router and the HTTP handlers."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.switches = Switches(GATEWAY_MECHANISMS, settings.disabled)
        self.metrics = GatewayMetrics()
        self.pool = ReplicaPool(settings, self.switches, self.metrics)
        self.router = Router(self.pool, self.switches, self.metrics)
        self.admission = Admission(
            settings.max_inflight, settings.max_loop_lag_ms, self.switches, self.metrics
        )

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=MAX_BODY)
        app[MAX_BODY_KEY] = MAX_BODY
        app.add_routes(
            [
                web.post("/v1/recommend", self.recommend),
                web.get("/healthz", self.healthz),
                web.get("/readyz", self.readyz),
                web.get("/metrics", self.metrics_handler),
                openapi_route(OPENAPI),
                *resilience_routes(self.switches, self.settings.admin_token),
            ]
        )
        return app

    async def recommend(self, request: web.Request) -> web.Response:
        """POST /v1/recommend (shed with 503 + Retry-After, before any work, when overloaded)."""
        started = time.perf_counter()
        shed = self.admission.reason_to_shed()
        if shed is not None:
            self.metrics.shed.inc()
            self.metrics.requests.labels(code="503").inc()
            return web.json_response(
                {"error": f"{shed}; request shed"}, status=503, headers={"Retry-After": "1"}
            )
        self.admission.enter()
        code = 200
        try:
            user_id, k, query = parse_recommend(
                await read_json_object(request), self.settings.max_k
            )
            ans = await self.router.recommend(user_id, k, query, self.settings.deadline_ms / 1000)
            self.metrics.tier(ans.fallback)
            return json_body(
                {
                    "user_id": user_id,
                    "items": [
                        {"item_id": i, "score": s}
                        for i, s in zip(ans.item_ids, ans.scores, strict=True)
                    ],
                    "fallback": ans.fallback,
                    "model_version": ans.model_version,
                    "replica": ans.replica,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                }
            )
        except ServingError as exc:
            code = next((s for c, s in STATUS.items() if isinstance(exc, c)), 500)
            return web.json_response({"error": str(exc)}, status=code)
        finally:
            self.admission.leave()
            self.metrics.request_done(str(code), time.perf_counter() - started)

    async def healthz(self, request: web.Request) -> web.Response:
        """Liveness."""
        return web.json_response({"live": True})

    async def readyz(self, request: web.Request) -> web.Response:
        """Ready when at least one replica is in rotation."""
        detail = {
            r.name: {
                "address": r.address,
                "healthy": r.healthy,
                "ejected": r.ejected,
                "in_rotation": self.pool.in_rotation(r),
            }
            for r in self.pool.replicas
        }
        ok = self.pool.ready()
        return web.json_response({"ready": ok, "replicas": detail}, status=200 if ok else 503)

    async def metrics_handler(self, request: web.Request) -> web.Response:
        """Prometheus metrics."""
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def serve(settings: GatewaySettings) -> int:
    """Run until SIGTERM/SIGINT."""
    gw = Gateway(settings)
    gw.pool.open()
    await gw.pool.check_all()
    gw.pool.start_health()
    gw.admission.start()
    gc.collect()
    gc.freeze()  # start-up objects stay: keep them out of GC passes (p99 pauses)
    runner = web.AppRunner(gw.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"gateway: listening on {settings.host}:{settings.port} "
        f"replicas={','.join(settings.replicas)}",
        file=sys.stderr,
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await gw.admission.stop()
        await gw.pool.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and serve."""
    settings = GatewaySettings.from_argv(argv)
    try:
        return asyncio.run(serve(settings))
    except OSError as exc:
        print(f"error: gateway: {exc}", file=sys.stderr)
        return 1
