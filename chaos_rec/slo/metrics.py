"""Per-second load metrics: the latency histogram and window aggregates.

Shared by the locustfile (which builds one timeline row per second) and the
SLO engine/probes (which aggregate rows over a window). Pure Python, no I/O.

A row's ``lat_hist`` maps bucket index ``k`` (as a string) to a count; bucket
``k`` holds latencies in ``(GROWTH**(k-1), GROWTH**k]`` ms (bucket 0: <= 1 ms),
so a window's percentiles are exact to within ~4 % (and never above its max).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

__all__ = [
    "GROWTH",
    "SecondStats",
    "availability",
    "bucket_of",
    "fallback_ratio",
    "generator_lag_ms",
    "hist_percentile",
    "is_server_error",
    "latency_percentile",
    "send_ratio",
    "summarize",
    "timeout_ratio",
]

GROWTH: Final = 1.04
_LOG: Final = math.log(GROWTH)


def bucket_of(ms: float) -> int:
    """Histogram bucket index of a latency in ms."""
    if ms <= 1.0:
        return 0
    return max(0, math.ceil(math.log(ms) / _LOG - 1e-9))


def hist_percentile(hist: Mapping[int, int], q: float) -> float | None:
    """Percentile ``q`` (0-100) of a bucket histogram, geometric interpolation."""
    total = sum(hist.values())
    if total <= 0:
        return None
    rank = q / 100.0 * total
    cum = 0
    for k in sorted(hist):
        n = hist[k]
        if n <= 0:
            continue
        if cum + n >= rank:
            lo = GROWTH ** (k - 1) if k > 0 else 0.0
            hi = GROWTH**k
            frac = (rank - cum) / n
            if lo <= 0:
                return hi * frac
            return float(lo * (hi / lo) ** frac)
        cum += n
    return GROWTH ** max(hist)


def is_server_error(code: str) -> bool:
    """True for 5xx and transport failures (recorded as status ``0``)."""
    try:
        c = int(code)
    except ValueError:
        return True
    return c == 0 or c >= 500


def _merged_hist(
    rows: Iterable[Mapping[str, Any]], field: str = "lat_hist"
) -> dict[int, int] | None:
    merged: dict[int, int] = {}
    for row in rows:
        hist = row.get(field)
        if hist is None:
            if int(row.get("requests", 0)):
                return None  # an older row without histogram: cannot merge exactly
            continue
        for k, n in hist.items():
            merged[int(k)] = merged.get(int(k), 0) + int(n)
    return merged


def latency_percentile(
    rows: Sequence[Mapping[str, Any]], q: float, *, accepted: bool = False
) -> float | None:
    """Latency percentile ``q`` over rows (histograms merged; else request-weighted).

    ``accepted``: of the answered requests only (no 5xx, no transport error), e.g. the requests
    a shedding deployment took on during overload; None for rows that do not record them.
    """
    hist = _merged_hist(rows, "ok_hist" if accepted else "lat_hist")
    if accepted:
        if hist is None:
            return None
        value = hist_percentile(hist, q)
        maxes = [float(r["ok_max_ms"]) for r in rows if r.get("ok_max_ms") is not None]
        return min(value, max(maxes)) if value is not None and maxes else value
    if hist is not None:
        value = hist_percentile(hist, q)
        maxes = [float(r["max_ms"]) for r in rows if r.get("max_ms") is not None]
        if value is not None and maxes:
            value = min(value, max(maxes))
        return value
    key = f"p{int(q)}_ms"
    num = 0.0
    den = 0
    for row in rows:
        v = row.get(key)
        n = int(row.get("requests", 0))
        if v is not None and n > 0:
            num += float(v) * n
            den += n
    return num / den if den else None


def availability(rows: Iterable[Mapping[str, Any]]) -> float | None:
    """Share of requests that did not end in a 5xx or a transport failure."""
    total = 0
    bad = 0
    for row in rows:
        total += int(row.get("requests", 0))
        status = row.get("status") or {}
        if status:
            bad += sum(int(n) for code, n in status.items() if is_server_error(str(code)))
        else:
            bad += int(row.get("failures", 0))
    return None if total == 0 else (total - bad) / total


def timeout_ratio(rows: Iterable[Mapping[str, Any]]) -> float | None:
    """Share of requests that waited out a deadline: 504 or a transport failure (status ``0``).

    Unlike a shed (503 at once), a timeout is a request the deployment took on and could not
    answer in time: what load shedding exists to prevent.
    """
    total = 0
    late = 0
    for row in rows:
        total += int(row.get("requests", 0))
        status = row.get("status") or {}
        late += int(status.get("504", 0)) + int(status.get("0", 0))
    return None if total == 0 else late / total


def fallback_ratio(rows: Iterable[Mapping[str, Any]]) -> float | None:
    """Share of answered known-user requests served by a fallback tier (not ``none``)."""
    total = 0
    degraded = 0
    for row in rows:
        tiers = row.get("tiers") or {}
        n = sum(int(v) for v in tiers.values())
        total += n
        degraded += n - int(tiers.get("none", 0))
    return None if total == 0 else degraded / total


def send_ratio(rows: Iterable[Mapping[str, Any]]) -> float | None:
    """Share of its schedule the load generator offered (None: not recorded).

    Offered = sent + slots a user skipped while its request was in flight (the deployment, not
    the generator, held those up); a ratio below 1 is then the generator falling behind.
    """
    sent = 0.0
    asked = 0.0
    for row in rows:
        target = row.get("target_rps")
        if row.get("sent") is None or not target:
            continue
        sent += int(row["sent"]) + int(row.get("busy_skipped") or 0)
        asked += float(target)
    return None if asked <= 0 else sent / asked


def generator_lag_ms(rows: Iterable[Mapping[str, Any]]) -> float | None:
    """Median over the seconds of the generator's worst event-loop delay in each (None: none)."""
    lags = sorted(float(r["gen_lag_ms"]) for r in rows if r.get("gen_lag_ms") is not None)
    if not lags:
        return None
    mid = len(lags) // 2
    return lags[mid] if len(lags) % 2 else (lags[mid - 1] + lags[mid]) / 2


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Aggregate rows into one window summary (what latency probes return)."""
    requests = sum(int(r.get("requests", 0)) for r in rows)
    status: dict[str, int] = {}
    tiers: dict[str, int] = {}
    for r in rows:
        for k, v in (r.get("status") or {}).items():
            status[k] = status.get(k, 0) + int(v)
        for k, v in (r.get("tiers") or {}).items():
            tiers[k] = tiers.get(k, 0) + int(v)
    maxes = [float(r["max_ms"]) for r in rows if r.get("max_ms") is not None]
    return {
        "seconds": len(rows),
        "requests": requests,
        "rps": requests / len(rows) if rows else 0.0,
        "failures": sum(int(r.get("failures", 0)) for r in rows),
        "status": status,
        "tiers": tiers,
        "p50_ms": latency_percentile(rows, 50),
        "p95_ms": latency_percentile(rows, 95),
        "p99_ms": latency_percentile(rows, 99),
        "max_ms": max(maxes) if maxes else None,
        "availability": availability(rows),
        "fallback_ratio": fallback_ratio(rows),
    }


class SecondStats:
    """Accumulates the requests that completed within one second into a timeline row."""

    def __init__(self, t: int) -> None:
        self.t = t
        self.latencies: list[float] = []
        self.ok_latencies: list[float] = []  # answered requests only (no 5xx, no transport error)
        self.failures = 0
        self.status: dict[str, int] = {}
        self.tiers: dict[str, int] = {}
        self.cold = 0

    def add(self, ms: float, status: int, tier: str | None, *, failed: bool, known: bool) -> None:
        """Record one finished request."""
        self.latencies.append(ms)
        if not failed and status < 400:
            self.ok_latencies.append(ms)
        code = str(status)
        self.status[code] = self.status.get(code, 0) + 1
        if failed:
            self.failures += 1
        if tier is not None:
            if known:
                self.tiers[tier] = self.tiers.get(tier, 0) + 1
            else:
                self.cold += 1

    def row(self, phase: str) -> dict[str, Any]:
        """The timeline row (contract shape plus ``lat_hist``, ``ok_hist`` and ``unknown_users``)."""
        lat = sorted(self.latencies)
        hist = _hist(lat)

        def pct(q: float) -> float | None:
            if not lat:
                return None
            idx = min(len(lat) - 1, max(0, math.ceil(q / 100.0 * len(lat)) - 1))
            return round(lat[idx], 3)

        return {
            "t": self.t,
            "phase": phase,
            "requests": len(lat),
            "failures": self.failures,
            "status": dict(self.status),
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "max_ms": round(lat[-1], 3) if lat else None,
            "tiers": dict(self.tiers),
            "unknown_users": self.cold,
            "lat_hist": hist,
            "ok_hist": _hist(self.ok_latencies),
            "ok_max_ms": round(max(self.ok_latencies), 3) if self.ok_latencies else None,
        }


def _hist(latencies: Iterable[float]) -> dict[str, int]:
    hist: dict[str, int] = {}
    for ms in latencies:
        k = str(bucket_of(ms))
        hist[k] = hist.get(k, 0) + 1
    return hist
