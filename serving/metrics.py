"""Prometheus metrics of the model server and the gateway (one registry per process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from serving.breaker import STATE_CODES


class _Children:
    """Labelled children looked up once and kept (labels() per request costs a lock + hash)."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, metric: Any, **labels: str) -> Any:
        key = (metric._name, *labels.values())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(**labels)
        return child


_LAT = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServerMetrics(_Children):
    """Request latency, batch sizes, queue depth, tiers, breaker, feature store, model version."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry = CollectorRegistry()
        self.request_latency = Histogram(
            "cr_request_latency_seconds",
            "Inference request latency",
            ["protocol"],
            buckets=_LAT,
            registry=r,
        )
        self.requests = Counter(
            "cr_requests", "Inference requests by outcome", ["protocol", "code"], registry=r
        )
        self.batch_size = Histogram(
            "cr_batch_size",
            "Requests per forward pass",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.queue_depth = Gauge("cr_queue_depth", "Requests waiting for a batch", registry=r)
        self.shed = Counter("cr_shed", "Requests shed because the queue was full", registry=r)
        self.tiers = Counter("cr_fallback", "Answers by fallback tier", ["tier"], registry=r)
        self.breaker_state = Gauge(
            "cr_breaker_state", "Feature-store breaker: 0 closed, 1 half-open, 2 open", registry=r
        )
        self.feature_latency = Histogram(
            "cr_feature_latency_seconds", "Feature-store lookup latency", buckets=_LAT, registry=r
        )
        self.feature_errors = Counter(
            "cr_feature_errors", "Feature-store failures", ["kind"], registry=r
        )
        self.model_info = Gauge(
            "cr_model_info", "Loaded model version", ["model_version"], registry=r
        )
        self.reloads = Counter("cr_reloads", "Hot reloads by result", ["result"], registry=r)

    def tier(self, tier: str) -> None:
        """Count one answer by fallback tier."""
        self._child(self.tiers, tier=tier).inc()

    def request_done(self, protocol: str, code: str, seconds: float) -> None:
        """Count one inference request by outcome and observe its latency."""
        self._child(self.requests, protocol=protocol, code=code).inc()
        self._child(self.request_latency, protocol=protocol).observe(seconds)

    def set_breaker(self, state: str) -> None:
        """Export the breaker state as a number."""
        self.breaker_state.set(STATE_CODES[state])

    def set_model(self, version: str) -> None:
        """Export the loaded model version (one series with value 1)."""
        self.model_info.clear()
        self.model_info.labels(model_version=version).set(1)

    def render(self) -> bytes:
        """Prometheus text exposition."""
        return generate_latest(self.registry)


class GatewayMetrics(_Children):
    """Gateway request latency, attempts, retries, hedges, ejections, replica health."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry = CollectorRegistry()
        self.request_latency = Histogram(
            "cr_gateway_latency_seconds", "Gateway request latency", buckets=_LAT, registry=r
        )
        self.requests = Counter("cr_gateway_requests", "Requests by status", ["code"], registry=r)
        self.attempts = Counter(
            "cr_gateway_attempts", "Replica calls by result", ["replica", "result"], registry=r
        )
        self.retries = Counter("cr_gateway_retries", "Retries on another replica", registry=r)
        self.hedges = Counter("cr_gateway_hedges", "Hedged calls sent", registry=r)
        self.spills = Counter(
            "cr_gateway_affinity_spills",
            "Calls sent past the user's replica because it had too many calls in flight",
            registry=r,
        )
        self.shed = Counter(
            "cr_gateway_shed", "Requests shed (503): too many in progress or loop lag", registry=r
        )
        self.inflight = Gauge("cr_gateway_inflight", "Requests in progress", registry=r)
        self.loop_lag = Gauge(
            "cr_gateway_loop_lag_seconds",
            "Smoothed event-loop lag (shed above the limit)",
            registry=r,
        )
        self.ejections = Counter(
            "cr_gateway_ejections", "Replica ejections", ["replica"], registry=r
        )
        self.healthy = Gauge(
            "cr_gateway_replica_healthy", "1 = in rotation", ["replica"], registry=r
        )
        self.tiers = Counter(
            "cr_gateway_fallback", "Answers by fallback tier", ["tier"], registry=r
        )

    def tier(self, tier: str) -> None:
        """Count one answer by fallback tier."""
        self._child(self.tiers, tier=tier).inc()

    def request_done(self, code: str, seconds: float) -> None:
        """Count one request by status and observe its latency."""
        self._child(self.requests, code=code).inc()
        self.request_latency.observe(seconds)

    def attempt(self, replica: str, result: str) -> None:
        """Count one replica call by result."""
        self._child(self.attempts, replica=replica, result=result).inc()

    def render(self) -> bytes:
        """Prometheus text exposition."""
        return generate_latest(self.registry)
