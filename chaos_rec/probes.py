"""Chaos Toolkit probes of chaos-rec: they return JSON values and raise only when they cannot measure.

Latency, availability and fallback probes read the running load's per-second
timeline (``timeline.jsonl`` in the run dir) over a window of recent seconds.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Final, TypeVar

from chaos_rec import backends
from chaos_rec.core import quality
from chaos_rec.core.rundir import RunContext, phase_at
from chaos_rec.core.target import Deployment
from chaos_rec.errors import ChaosRecError, ConfigError, ProbeError
from chaos_rec.extconfig import ExtConfig, ext_config
from chaos_rec.jsonhttp import call
from chaos_rec.slo import SLOSpec, evaluate, metrics
from chaos_rec.slo.promql import render_query
from chaos_rec.targets import load_deployment

__all__ = [
    "availability",
    "current_phase",
    "fallback_ratio",
    "feature_store_consistent",
    "gateway_health",
    "gateway_ready",
    "latency_ms",
    "load_summary",
    "prometheus_query",
    "quality_baseline",
    "quality_ratio",
    "replica_ready",
    "replicas_ready",
    "slo_met",
    "time_to_recover",
]

Cfg = Mapping[str, Any] | None
T = TypeVar("T")


def _setup(configuration: Cfg, secrets: Cfg) -> tuple[ExtConfig, Deployment]:
    cfg = ext_config(configuration, secrets)
    try:
        return cfg, load_deployment(cfg, secrets)
    except ChaosRecError as exc:
        raise ProbeError(f"cannot resolve the deployment: {exc}") from exc


def _allowed(resolve: Callable[[], T]) -> T:
    """An endpoint (or a seam's backend) through the target allowlist; a refusal is this
    probe's one-line ProbeError."""
    try:
        return resolve()
    except ChaosRecError as exc:
        raise ProbeError(str(exc)) from exc


def _status(url: str, timeout: float) -> int:
    """HTTP status of a GET, 0 when nothing answered (refused, timeout)."""
    try:
        return call("GET", url, into=ProbeError, timeout=timeout).status
    except ProbeError:
        return 0


def gateway_health(*, configuration: Cfg = None, secrets: Cfg = None) -> dict[str, Any]:
    """Gateway liveness and readiness: {"live", "ready", "healthz", "readyz"} (0 = no answer)."""
    cfg, dep = _setup(configuration, secrets)
    gateway = _allowed(dep.gateway)
    live = _status(gateway + "/healthz", cfg.timeout_s)
    ready = _status(gateway + "/readyz", cfg.timeout_s)
    return {"live": live == 200, "ready": ready == 200, "healthz": live, "readyz": ready}


def gateway_ready(*, configuration: Cfg = None, secrets: Cfg = None) -> bool:
    """True when the gateway's /readyz answers 200."""
    cfg, dep = _setup(configuration, secrets)
    return _status(_allowed(dep.gateway) + "/readyz", cfg.timeout_s) == 200


def replica_ready(
    target: str = "replica:0", *, configuration: Cfg = None, secrets: Cfg = None
) -> bool:
    """True when a replica's /v2/health/ready answers 200."""
    cfg, dep = _setup(configuration, secrets)
    url = _allowed(lambda: dep.replica_url(target))
    return _status(url + "/v2/health/ready", min(cfg.timeout_s, 2.0)) == 200


def replicas_ready(*, configuration: Cfg = None, secrets: Cfg = None) -> int:
    """Number of replicas whose /v2/health/ready answers 200."""
    cfg, dep = _setup(configuration, secrets)
    urls = [_allowed(partial(dep.replica_url, r.name)) for r in dep.replicas if r.http_url]
    if not urls:
        raise ProbeError("the deployment names no replica http_url")
    return sum(_status(u + "/v2/health/ready", min(cfg.timeout_s, 2.0)) == 200 for u in urls)


def _ctx(configuration: Cfg, secrets: Cfg) -> RunContext:
    try:
        return ext_config(configuration, secrets).run_context()
    except ConfigError as exc:
        raise ProbeError(str(exc)) from exc


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ProbeError(f"{name} must be a number, got {value!r}") from None


def _window(
    configuration: Cfg, secrets: Cfg, window_s: float, phase: str | None
) -> list[dict[str, Any]]:
    window = _number("window_s", window_s)
    if not 1 <= window <= 3600:
        raise ProbeError(f"window_s must be within [1, 3600], got {window_s!r}")
    ctx = _ctx(configuration, secrets)
    marks = ctx.phases()
    rows: list[dict[str, Any]] = [dict(r) for r in ctx.timeline()]
    if phase is not None:
        rows = (
            [r for r in rows if phase_at(marks, float(r["t"])) == phase]
            if marks
            else [r for r in rows if r.get("phase") == phase]
        )
    # rows are flushed when their second ends: the last complete second is now - 1
    since = int(time.time()) - 1 - window
    rows = [r for r in rows if r["t"] >= since]
    if not any(int(r.get("requests", 0)) for r in rows):
        where = f" of phase {phase}" if phase else ""
        raise ProbeError(
            f"no load measured in the last {window:g}s{where} (is the chaos_rec.controls load running?)"
        )
    return rows


def latency_ms(
    percentile: float = 99.0,
    window_s: float = 10.0,
    phase: str | None = None,
    *,
    configuration: Cfg = None,
    secrets: Cfg = None,
) -> float:
    """Latency percentile (ms) of the running load over the last window_s seconds."""
    if not 0 < _number("percentile", percentile) <= 100:
        raise ProbeError(f"percentile must be within (0, 100], got {percentile!r}")
    value = metrics.latency_percentile(
        _window(configuration, secrets, window_s, phase), float(percentile)
    )
    if value is None:
        raise ProbeError("no request finished in the window")
    return round(value, 3)


def availability(
    window_s: float = 10.0,
    phase: str | None = None,
    *,
    configuration: Cfg = None,
    secrets: Cfg = None,
) -> float:
    """Share of requests not ending in 5xx or a transport failure over the last window_s seconds."""
    value = metrics.availability(_window(configuration, secrets, window_s, phase))
    assert value is not None  # _window guarantees requests
    return round(value, 6)


def fallback_ratio(
    window_s: float = 10.0,
    phase: str | None = None,
    *,
    configuration: Cfg = None,
    secrets: Cfg = None,
) -> float:
    """Share of answered known-user requests served by a fallback tier over the last window_s s."""
    value = metrics.fallback_ratio(_window(configuration, secrets, window_s, phase))
    return 0.0 if value is None else round(value, 6)


def load_summary(
    window_s: float = 10.0,
    phase: str | None = None,
    *,
    configuration: Cfg = None,
    secrets: Cfg = None,
) -> dict[str, Any]:
    """Summary of the last window_s seconds of load: rps, percentiles, status codes, tiers."""
    return metrics.summarize(_window(configuration, secrets, window_s, phase))


def current_phase(*, configuration: Cfg = None, secrets: Cfg = None) -> str:
    """The phase in force now (steady, fault or recovery)."""
    return _ctx(configuration, secrets).current_phase()


# ---- quality on a replay of held-out interactions -------------------------------------


def quality_baseline(
    sample: int = 200, k: int = 10, *, configuration: Cfg = None, secrets: Cfg = None
) -> dict[str, Any]:
    """Measure HR@k/NDCG@k on a seeded replay of held-out interactions; store it as the baseline."""
    cfg, dep = _setup(configuration, secrets)
    ctx = _ctx(configuration, secrets)
    traffic = _allowed(partial(backends.traffic, dep, cfg.timeout_s))
    return quality.measure_baseline(ctx, traffic, dep.holdout, sample, k, cfg.seed)


def quality_ratio(*, configuration: Cfg = None, secrets: Cfg = None) -> float:
    """Quality now relative to the healthy baseline (NDCG@k ratio; 1.0 = no loss); recorded."""
    cfg, dep = _setup(configuration, secrets)
    ctx = _ctx(configuration, secrets)
    traffic = _allowed(partial(backends.traffic, dep, cfg.timeout_s))
    return quality.measure_ratio(ctx, traffic, dep.holdout, cfg.seed)


# ---- feature store, recovery, SLO ------------------------------------------------------


def feature_store_consistent(
    timeout_s: float = 120.0, *, configuration: Cfg = None, secrets: Cfg = None
) -> bool:
    """True when Redis matches the offline features (`python -m training materialize --verify-only`)."""
    cfg, dep = _setup(configuration, secrets)
    try:
        return backends.data(dep, cfg.timeout_s).verify(timeout_s)
    except ChaosRecError as exc:
        raise ProbeError(str(exc)) from exc


def time_to_recover(
    timeout_s: float = 60.0,
    window_s: float = 5.0,
    min_availability: float = 0.99,
    max_p99_ms: float | None = None,
    *,
    configuration: Cfg = None,
    secrets: Cfg = None,
) -> dict[str, Any]:
    """Seconds from the last recovery mark to the first good window (waits up to timeout_s)."""
    ctx = _ctx(configuration, secrets)
    start = ctx.phase_since("recovery")
    if start is None:
        raise ProbeError("no recovery phase marked yet: remove the fault first")
    budget: dict[str, float] = {"availability": min_availability}
    if max_p99_ms is not None:
        budget["p99_ms"] = max_p99_ms
    spec = SLOSpec.parse({"recovery": budget, "max_recovery_s": timeout_s, "window_s": window_s})
    deadline = time.monotonic() + timeout_s + window_s + 2
    while True:
        verdict = evaluate(spec, ctx.timeline(), ctx.phases())
        if verdict.recovery_s is not None:
            return {"recovered": True, "seconds": round(verdict.recovery_s, 3)}
        if time.monotonic() > deadline:
            return {"recovered": False, "seconds": None, "waited_s": timeout_s}
        time.sleep(0.5)


def slo_met(*, configuration: Cfg = None, secrets: Cfg = None) -> bool:
    """True when the run's SLO spec holds over the timeline so far (verdict written to the run dir)."""
    ctx = _ctx(configuration, secrets)
    raw = ctx.slo_spec()
    if raw is None:
        raise ProbeError(
            "no SLO spec in this run: add extensions[name=chaos_rec].slo to the experiment"
        )
    spec = SLOSpec.parse(raw)
    measured = ctx.quality()
    # quality and server-side budgets are judged at the end of the run, not mid-run
    phases = {
        p: dataclasses.replace(b, min_quality_ratio=None, promql=()) for p, b in spec.phases.items()
    }
    spec = SLOSpec(phases, spec.max_recovery_s, None, spec.window_s)
    verdict = evaluate(spec, ctx.timeline(), ctx.phases(), measured)
    ctx.write_json("slo_verdict_latest.json", verdict.to_dict())
    return verdict.passed


_AGGREGATES: Final[dict[str, Callable[[list[float]], float]]] = {
    "max": max,
    "min": min,
    "sum": sum,
}


def prometheus_query(
    query: str,
    window_s: float = 5.0,
    aggregate: str = "max",
    *,
    configuration: Cfg = None,
    secrets: Cfg = None,
) -> float:
    """Value of a PromQL query now ($window = window_s), max/min/sum over its series."""
    if aggregate not in _AGGREGATES:
        raise ConfigError(f"aggregate must be max, min or sum, got {aggregate!r}")
    _cfg, dep = _setup(configuration, secrets)
    server = _allowed(dep.server_metrics)
    if server is None:
        raise ProbeError(
            f"no Prometheus for {dep.source}: the reference stack has none without the "
            "prometheus binary; in a deployment file set prometheus_url"
        )
    rendered = render_query(query, window_s)
    values = [s.value for s in server.instant(rendered, time.time())]
    if not values:
        raise ProbeError(
            f"Prometheus query {rendered!r} returned no series (wrong metric or label?)"
        )
    if any(math.isnan(v) for v in values):
        raise ProbeError(f"Prometheus query {rendered!r} returned NaN (nothing counted yet?)")
    return float(_AGGREGATES[aggregate](values))
