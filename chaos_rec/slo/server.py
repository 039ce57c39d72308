"""Server-side metrics: the seam the SLO engine reads, and its Prometheus HTTP API backend.

:class:`ServerMetrics` is what the judge of ``promql`` budgets needs (an instant and a range
query); :class:`PrometheusAPI` speaks ``/api/v1/query`` and ``/api/v1/query_range`` of any
Prometheus (the reference stack's, or a user's, with an optional auth header). Every failure, an
error answer included, is a :class:`~chaos_rec.errors.ProbeError` whose line says what to fix.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

from chaos_rec.errors import ProbeError
from chaos_rec.jsonhttp import call

__all__ = ["PrometheusAPI", "Sample", "Series", "ServerMetrics"]


@dataclass(frozen=True)
class Sample:
    """One series of an instant query: its labels and its value (NaN kept as NaN)."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its ``(unix time, value)`` points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


class ServerMetrics(Protocol):
    """Where server-side SLOs are read (a Prometheus HTTP API)."""

    def instant(self, query: str, at: float) -> list[Sample]:
        """The value of ``query`` at unix time ``at``, one sample per series."""
        ...

    def series(self, query: str, start: float, end: float, step: float) -> list[Series]:
        """``query`` evaluated every ``step`` seconds from ``start`` to ``end``."""
        ...

    def latest(self) -> float:
        """The newest scrape time Prometheus holds (unix seconds)."""
        ...


def _value(raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class PrometheusAPI:
    """A Prometheus HTTP API at ``url``; ``headers`` go with every call (e.g. Authorization)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float = 10.0

    def _get(self, path: str, params: Mapping[str, str], query: str) -> Any:
        url = f"{self.url.rstrip('/')}{path}?{urlencode(params)}"
        reply = call(
            "GET", url, into=ProbeError, timeout=self.timeout_s, headers=dict(self.headers),
            what=f"Prometheus query {query!r} at {self.url}",
        )  # fmt: skip
        data = reply.data if isinstance(reply.data, Mapping) else {}
        if not reply.ok or data.get("status") != "success":
            why = data.get("error") or reply.error_message()
            raise ProbeError(
                f"Prometheus at {self.url} refused query {query!r} (HTTP {reply.status}): {why}"
            )
        return data.get("data") or {}

    def instant(self, query: str, at: float) -> list[Sample]:
        """The value of ``query`` at ``at`` (a scalar answers as one sample without labels)."""
        data = self._get("/api/v1/query", {"query": query, "time": f"{at:.3f}"}, query)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list):
            return [Sample({}, _value(result[1]))]
        if kind != "vector":
            raise ProbeError(f"Prometheus query {query!r} gave a {kind}, not an instant vector")
        return [Sample(dict(r.get("metric") or {}), _value(r["value"][1])) for r in result or []]

    def series(self, query: str, start: float, end: float, step: float) -> list[Series]:
        """``query`` over ``[start, end]`` every ``step`` seconds, one entry per series."""
        params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._get("/api/v1/query_range", params, query)
        return [
            Series(
                dict(r.get("metric") or {}),
                tuple((float(t), _value(v)) for t, v in r.get("values") or []),
            )
            for r in data.get("result") or []
        ]

    def latest(self) -> float:
        """The newest scrape time of any target (``timestamp(up)``), or 0 when none yet."""
        samples = self.instant("max(timestamp(up))", time.time())
        return max((s.value for s in samples if math.isfinite(s.value)), default=0.0)
