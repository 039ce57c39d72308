"""Chaos Toolkit probes of chaos-rec: they return JSON values and raise only when they cannot measure.

Latency, availability and fallback probes read the running load's per-second
timeline (``timeline.jsonl`` in the run dir) over a window of recent seconds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import subprocess
import time
from collections.abc import Mapping
from typing import Any

import httpx

from chaos_rec.errors import ChaosRecError, ConfigError, ProbeError
from chaos_rec.extconfig import ExtConfig, ext_config
from chaos_rec.load import metrics
from chaos_rec.runctx import RunContext, phase_at
from chaos_rec.slo import SLOSpec, evaluate
from chaos_rec.targets import Deployment, load_deployment

__all__ = [
    "availability",
    "current_phase",
    "fallback_ratio",
    "feature_store_consistent",
    "gateway_health",
    "gateway_ready",
    "latency_ms",
    "load_summary",
    "quality_baseline",
    "quality_ratio",
    "replica_ready",
    "replicas_ready",
    "slo_met",
    "time_to_recover",
]

Cfg = Mapping[str, Any] | None
MIN_BASELINE_HITS = 10  # below this the NDCG ratio is noise; use top-k agreement instead


def _setup(configuration: Cfg, secrets: Cfg) -> tuple[ExtConfig, Deployment]:
    cfg = ext_config(configuration, secrets)
    try:
        return cfg, load_deployment(cfg)
    except ChaosRecError as exc:
        raise ProbeError(f"cannot resolve the deployment: {exc}") from exc


def _status(url: str, timeout: float) -> int:
    """HTTP status of a GET, 0 when nothing answered (refused, timeout)."""
    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.HTTPError:
        return 0


def gateway_health(*, configuration: Cfg = None, secrets: Cfg = None) -> dict[str, Any]:
    """Gateway liveness and readiness: {"live", "ready", "healthz", "readyz"} (0 = no answer)."""
    cfg, dep = _setup(configuration, secrets)
    live = _status(dep.gateway_url + "/healthz", cfg.timeout_s)
    ready = _status(dep.gateway_url + "/readyz", cfg.timeout_s)
    return {"live": live == 200, "ready": ready == 200, "healthz": live, "readyz": ready}


def gateway_ready(*, configuration: Cfg = None, secrets: Cfg = None) -> bool:
    """True when the gateway's /readyz answers 200."""
    cfg, dep = _setup(configuration, secrets)
    return _status(dep.gateway_url + "/readyz", cfg.timeout_s) == 200


def replica_ready(
    target: str = "replica:0", *, configuration: Cfg = None, secrets: Cfg = None
) -> bool:
    """True when a replica's /v2/health/ready answers 200."""
    cfg, dep = _setup(configuration, secrets)
    rep = dep.replica(target)
    if not rep.http_url:
        raise ProbeError(f"{rep.name} has no http_url in the deployment")
    return _status(rep.http_url + "/v2/health/ready", min(cfg.timeout_s, 2.0)) == 200


def replicas_ready(*, configuration: Cfg = None, secrets: Cfg = None) -> int:
    """Number of replicas whose /v2/health/ready answers 200."""
    cfg, dep = _setup(configuration, secrets)
    urls = [r.http_url for r in dep.replicas if r.http_url]
    if not urls:
        raise ProbeError("the deployment names no replica http_url")
    return sum(_status(u + "/v2/health/ready", min(cfg.timeout_s, 2.0)) == 200 for u in urls)


def _ctx(configuration: Cfg, secrets: Cfg) -> RunContext:
    try:
        return ext_config(configuration, secrets).run_context()
    except ConfigError as exc:
        raise ProbeError(str(exc)) from exc


def _window(
    configuration: Cfg, secrets: Cfg, window_s: float, phase: str | None
) -> list[dict[str, Any]]:
    if not 1 <= float(window_s) <= 3600:
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
    since = int(time.time()) - 1 - float(window_s)
    rows = [r for r in rows if r["t"] >= since]
    if not any(int(r.get("requests", 0)) for r in rows):
        where = f" of phase {phase}" if phase else ""
        raise ProbeError(
            f"no load measured in the last {window_s:g}s{where} (is the chaos_rec.controls load running?)"
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
    if not 0 < float(percentile) <= 100:
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


def _replay(cfg: ExtConfig, dep: Deployment, sample: int, k: int) -> dict[str, Any]:
    if dep.holdout is None or not dep.holdout.is_file():
        raise ProbeError(
            f"no holdout file to replay ({dep.holdout}); build it with `python -m training holdout`"
        )
    rows = [r for r in json.loads(dep.holdout.read_text(encoding="utf-8")) if "target_item" in r]
    if not rows:
        raise ProbeError(f"holdout file {dep.holdout} holds no interaction")
    rng = random.Random(cfg.seed)
    picked = rng.sample(rows, min(sample, len(rows)))
    hits = 0
    ndcg = 0.0
    answered = 0
    tiers: dict[str, int] = {}
    lists: dict[str, list[int]] = {}
    t0 = time.time()
    with httpx.Client(timeout=cfg.timeout_s) as client:
        for row in picked:
            try:
                resp = client.post(
                    dep.gateway_url + "/v1/recommend",
                    json={"user_id": int(row["user_id"]), "k": k, "query": None},
                )
            except httpx.HTTPError:
                continue
            if resp.status_code != 200:
                continue
            body = resp.json()
            answered += 1
            tier = str(body.get("fallback"))
            tiers[tier] = tiers.get(tier, 0) + 1
            items = [int(i["item_id"]) for i in body.get("items", [])][:k]
            lists[str(row["user_id"])] = items
            target = int(row["target_item"])
            if target in items:
                hits += 1
                ndcg += 1.0 / math.log2(items.index(target) + 2)
    n = len(picked)
    return {
        "t": time.time(),
        "duration_s": round(time.time() - t0, 3),
        "n": n,
        "answered": answered,
        f"hr@{k}": hits / n,
        f"ndcg@{k}": ndcg / n,
        "hits": hits,
        "tiers": tiers,
        "lists": lists,
    }


def _agreement(now: Mapping[str, list[int]], base: Mapping[str, list[int]], k: int) -> float:
    """Mean share of each user's healthy top-k that is still recommended (0 for no answer)."""
    if not base:
        return 0.0
    total = sum(
        len(set(now.get(u, [])) & set(items)) / max(1, min(k, len(items)))
        for u, items in base.items()
    )
    return total / len(base)


def quality_baseline(
    sample: int = 200, k: int = 10, *, configuration: Cfg = None, secrets: Cfg = None
) -> dict[str, Any]:
    """Measure HR@k/NDCG@k on a seeded replay of held-out interactions; store it as the baseline."""
    cfg, dep = _setup(configuration, secrets)
    ctx = _ctx(configuration, secrets)
    base = _replay(cfg, dep, sample, k)
    if not base["answered"]:
        raise ProbeError(f"the gateway answered none of {base['n']} replayed requests: no baseline")
    data = ctx.read_json("quality.json") or {}
    data.update({"baseline": base, "sample": sample, "k": k})
    data.setdefault("measurements", [])
    ctx.write_json("quality.json", data)
    return base


def quality_ratio(*, configuration: Cfg = None, secrets: Cfg = None) -> float:
    """Quality now relative to the healthy baseline (NDCG@k ratio; 1.0 = no loss); recorded."""
    cfg, dep = _setup(configuration, secrets)
    ctx = _ctx(configuration, secrets)
    data = ctx.read_json("quality.json") or {}
    base = data.get("baseline")
    if not base:
        raise ProbeError(
            "no quality baseline in this run: call the probe quality_baseline in the steady state first"
        )
    k = int(data.get("k", 10))
    now = _replay(cfg, dep, int(data.get("sample", 200)), k)
    agreement = _agreement(now.pop("lists"), base.get("lists") or {}, k)
    if int(base.get("hits", 0)) >= MIN_BASELINE_HITS:
        ratio, basis = float(now[f"ndcg@{k}"]) / float(base[f"ndcg@{k}"]), f"ndcg@{k}"
    else:  # too few held-out hits for a stable NDCG ratio: how much of the healthy top-k survives
        ratio, basis = agreement, "agreement"
    now.update(
        {
            "ratio": round(ratio, 4),
            "ratio_basis": basis,
            "agreement": round(agreement, 4),
            "hr_ratio": round(now[f"hr@{k}"] / max(base[f"hr@{k}"], 1e-9), 4),
            "phase": ctx.current_phase(),
        }
    )
    data.setdefault("measurements", []).append(now)
    ctx.write_json("quality.json", data)
    return round(ratio, 4)


# ---- feature store, recovery, SLO ------------------------------------------------------


def feature_store_consistent(
    timeout_s: float = 120.0, *, configuration: Cfg = None, secrets: Cfg = None
) -> bool:
    """True when Redis matches the offline features (`python -m training materialize --verify-only`)."""
    _cfg, dep = _setup(configuration, secrets)
    try:
        cmd = dep.materialize_command(verify_only=True)
    except ConfigError as exc:
        raise ProbeError(str(exc)) from exc
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ProbeError(f"materialize --verify-only did not finish within {timeout_s:g}s") from exc
    if proc.returncode not in (0, 1):
        last = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
        raise ProbeError(
            f"materialize --verify-only could not check (exit {proc.returncode}): {last[0]}"
        )
    return proc.returncode == 0


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
    raw = ctx.read_json("slo_spec.json")
    if raw is None:
        raise ProbeError(
            "no SLO spec in this run: add extensions[name=chaos_rec].slo to the experiment"
        )
    spec = SLOSpec.parse(raw)
    quality = ctx.read_json("quality.json")
    # quality is judged at the end of the run, not in a mid-run hypothesis
    phases = {p: dataclasses.replace(b, min_quality_ratio=None) for p, b in spec.phases.items()}
    spec = SLOSpec(phases, spec.max_recovery_s, None, spec.window_s)
    verdict = evaluate(spec, ctx.timeline(), ctx.phases(), quality)
    ctx.write_json("slo_verdict_latest.json", verdict.to_dict())
    return verdict.passed
