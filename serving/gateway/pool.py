"""Replicas behind the gateway: gRPC channels, routing, outlier ejection, health checks.

grpcio does the per-channel work (keepalive, reconnect backoff, a service-config retry of
UNAVAILABLE on the same channel, grpc.health.v1 through the same link). Picking a replica,
ejecting outliers and re-admitting them is done here, across channels: a per-channel policy
only ever sees its own replica (one address each, so that a fault-proxy link per replica
can partition exactly one of them).

Routing (`--routing`): `affinity` (default) sends a user's calls to the same replica, so that
the replica's cache of last-known features holds that user when the feature store fails: the
replicas are ranked per user by rendezvous (highest-random-weight) hashing, so only the users
of a lost or ejected replica move, each to its second choice. Bounded loads (Mirrokni et al.,
"Consistent Hashing with Bounded Loads", as in HAProxy's hash-balance-factor): a replica with
`balance_factor` x the mean calls in flight or more is passed over for the next one, so a hot
user or a slow replica cannot pile work onto one replica. `round-robin` spreads each call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from oip_proto import grpc_predict_v2_pb2_grpc as pb_grpc
from serving.metrics import GatewayMetrics
from serving.settings import GatewaySettings, Switches

SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": "inference.GRPCInferenceService"}],
                "waitForReady": False,
                "retryPolicy": {
                    "maxAttempts": 2,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.05s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)
CHANNEL_OPTIONS = [
    ("grpc.service_config", SERVICE_CONFIG),
    ("grpc.enable_retries", 1),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 2_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]


@dataclass
class Replica:
    """One replica as the gateway sees it."""

    name: str
    address: str
    channel: grpc.aio.Channel
    stub: pb_grpc.GRPCInferenceServiceStub
    health: health_pb2_grpc.HealthStub
    healthy: bool = True
    failures: int = 0
    ejected_until: float = 0.0
    ejected: bool = False
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=256))
    inflight: int = 0  # calls sent and not yet answered (bounded-load routing)
    seed: int = field(init=False)  # rendezvous-hash seed, from the name (stable over restarts)

    def __post_init__(self) -> None:
        self.seed = int.from_bytes(hashlib.blake2b(self.name.encode(), digest_size=8).digest())


_M64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash of a 64-bit integer."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


class ReplicaPool:
    """Route over replicas in rotation; eject on failures/stalls; re-admit on health."""

    def __init__(
        self,
        settings: GatewaySettings,
        switches: Switches,
        metrics: GatewayMetrics,
        clock: object = time.monotonic,
    ) -> None:
        self.settings = settings
        self.switches = switches
        self.metrics = metrics
        self._clock = clock
        self.replicas: list[Replica] = []
        self._rr = 0
        self._task: asyncio.Task[None] | None = None
        self._recent: deque[float] = deque(maxlen=512)
        self._p95 = 0.05
        self._since_p95 = 0

    def now(self) -> float:
        """Monotonic seconds."""
        return float(self._clock())  # type: ignore[operator]

    def open(self) -> None:
        """Create one channel per replica (lazy connect)."""
        for name, address in self.settings.replicas.items():
            channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
            self.replicas.append(
                Replica(
                    name,
                    address,
                    channel,
                    pb_grpc.GRPCInferenceServiceStub(channel),  # type: ignore[no-untyped-call]
                    health_pb2_grpc.HealthStub(channel),
                )
            )
            self.metrics.healthy.labels(replica=name).set(1)

    async def close(self) -> None:
        """Stop health checks and close channels."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for r in self.replicas:
            await r.channel.close(grace=None)

    def in_rotation(self, r: Replica) -> bool:
        """Healthy and not ejected (always true when `ejection` is off)."""
        if not self.switches["ejection"]:
            return True
        return r.healthy and not r.ejected

    def candidates(self, key: int | None = None) -> list[Replica]:
        """Replicas to try in order: the ones in rotation (all of them if none is: panic).

        With `affinity` routing and a key (the user id), in the key's rendezvous-hash order,
        the first one under its bounded load moved to the front; else round-robin.
        """
        h = None if key is None or self.settings.routing != "affinity" else key & _M64
        if h is not None:
            order = sorted(self.replicas, key=lambda r: _mix64(h ^ r.seed), reverse=True)
        else:
            n = len(self.replicas)
            start = self._rr % n
            self._rr += 1
            order = [self.replicas[(start + i) % n] for i in range(n)]
        live = [r for r in order if self.in_rotation(r)] or order
        if h is not None and len(live) > 1:
            total = sum(r.inflight for r in live)
            cap = math.ceil(self.settings.balance_factor * (total + 1) / len(live))
            if live[0].inflight >= cap:  # the mean is under the cap, so some replica is
                i = next(i for i, r in enumerate(live) if r.inflight < cap)
                live.insert(0, live.pop(i))
                self.metrics.spills.inc()
        return live

    def ready(self) -> bool:
        """At least one replica in rotation."""
        return any(self.in_rotation(r) for r in self.replicas)

    def success(self, r: Replica, latency_s: float) -> None:
        """Record a good answer."""
        r.failures = 0
        r.latencies.append(latency_s)
        self._recent.append(latency_s)
        self._since_p95 += 1
        if self._since_p95 >= 64 and len(self._recent) >= 20:  # re-sort now and then, not per call
            ordered = sorted(self._recent)
            self._p95 = max(0.005, ordered[int(0.95 * (len(ordered) - 1))])
            self._since_p95 = 0
        self.metrics.attempt(r.name, "ok")

    def failure(self, r: Replica, *, stall: bool, result: str) -> None:
        """Record a failed call; eject after N in a row or at once on a stall."""
        r.failures += 1
        self.metrics.attempt(r.name, result)
        if not self.switches["ejection"] or r.ejected:
            return
        if stall or r.failures >= self.settings.eject_after_failures:
            r.ejected = True
            r.ejected_until = self.now() + self.settings.eject_min_s
            self.metrics.ejections.labels(replica=r.name).inc()
            self.metrics.healthy.labels(replica=r.name).set(0)

    def hedge_delay_s(self) -> float:
        """Fixed hedge delay, or the p95 of recent good calls (at least 5 ms)."""
        if self.settings.hedge_after_ms > 0:
            return self.settings.hedge_after_ms / 1000
        return self._p95

    def start_health(self) -> None:
        """Start the background health checker."""
        self._task = asyncio.create_task(self._health_loop(), name="cr-gw-health")

    async def check(self, r: Replica) -> bool:
        """grpc.health.v1 Check through the replica's own link."""
        try:
            resp = await r.health.Check(
                health_pb2.HealthCheckRequest(service=""),
                timeout=max(0.1, self.settings.health_interval_s * 0.8),
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)

    async def check_all(self) -> None:
        """One round of health checks; re-admits ejected replicas whose time is up."""
        results = await asyncio.gather(*(self.check(r) for r in self.replicas))
        now = self.now()
        for r, ok in zip(self.replicas, results, strict=True):
            r.healthy = ok
            if r.ejected and ok and now >= r.ejected_until:
                r.ejected = False
                r.failures = 0
            self.metrics.healthy.labels(replica=r.name).set(1 if self.in_rotation(r) else 0)

    async def _health_loop(self) -> None:
        while True:
            await self.check_all()
            await asyncio.sleep(self.settings.health_interval_s)
