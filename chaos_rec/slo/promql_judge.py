"""Judging the server-side budgets of a spec, and the server-side series a report plots.

Each ``promql`` budget of a phase is one instant query at the end of each stretch of that phase,
with ``$window`` set to the stretch's length, so the value covers exactly the phase (the worst
stretch is reported, as the client-side keys report their worst window). A query error, an
empty result or a NaN fails the check with a line saying so: never a pass.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chaos_rec.errors import ChaosRecError
from chaos_rec.slo.promql import PromQLBudget, promql_slo, render_query
from chaos_rec.slo.result import SLOResult
from chaos_rec.slo.server import ServerMetrics
from chaos_rec.slo.spec import SLOSpec

__all__ = ["judge_promql", "phase_spans", "server_series"]

NO_SERVER = (
    "no Prometheus to read it from: the reference stack runs without one when the prometheus "
    "binary is missing; for a deployment file set prometheus_url"
)
SCRAPE_WAIT_S = 5.0  # how long to wait for Prometheus to scrape past a phase's end


def phase_spans(phases: Sequence[Mapping[str, Any]], end: float) -> list[tuple[str, float, float]]:
    """``(phase, start, end)`` of every stretch between the marks; the last one ends at ``end``."""
    marks = sorted((float(m["t"]), str(m["phase"])) for m in phases)
    out: list[tuple[str, float, float]] = []
    for i, (t, phase) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else end
        if stop > t:
            out.append((phase, t, stop))
    return out


def _ok(value: float, limit: float, direction: str) -> bool:
    return value <= limit if direction == "max" else value >= limit


def _worse(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "max" else a < b


def _wait_scraped(server: ServerMetrics, until: float, sleep: Callable[[float], None]) -> None:
    deadline = time.monotonic() + SCRAPE_WAIT_S
    while server.latest() < until and time.monotonic() < deadline:
        sleep(0.25)


def _judge_one(
    phase: str,
    budget: PromQLBudget,
    stretches: list[tuple[float, float]],
    server: ServerMetrics | None,
) -> list[SLOResult]:
    out: list[SLOResult] = []
    for direction, limit in budget.bounds():
        slo = promql_slo(budget.name, direction)
        worst: tuple[float, tuple[float, float]] | None = None
        problem = NO_SERVER
        for start, end in stretches:
            if server is None:
                break
            query = render_query(budget.query, end - start)
            try:
                samples = server.instant(query, end)
            except ChaosRecError as exc:
                problem = f"query failed: {exc}"
                worst = None
                break
            values = [s.value for s in samples]
            if not values:
                problem = f"query {query!r} returned no series (wrong metric or label?)"
                worst = None
                break
            if any(math.isnan(v) for v in values):
                problem = f"query {query!r} returned NaN (nothing counted in the window?)"
                worst = None
                break
            value = max(values) if direction == "max" else min(values)
            if worst is None or _worse(value, worst[0], direction):
                worst = (value, (start, end))
        if worst is None:
            span = stretches[0]
            out.append(SLOResult(slo, phase, span, None, limit, budget.unit, False, problem))
            continue
        value, span = worst
        out.append(
            SLOResult(slo, phase, span, value, limit, budget.unit, _ok(value, limit, direction))
        )
    return out


def judge_promql(
    spec: SLOSpec,
    phases: Sequence[Mapping[str, Any]],
    end: float,
    server: ServerMetrics | None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[SLOResult]:
    """One result per bound of every server-side budget of a phase that happened in the run."""
    budgets = spec.promql
    if not budgets:
        return []
    spans = phase_spans(phases, end)
    if server is not None and spans:
        with contextlib.suppress(ChaosRecError):  # each query below says what is wrong
            _wait_scraped(server, end, sleep)
    out: list[SLOResult] = []
    for phase, budget in budgets:
        stretches = [(s, e) for p, s, e in spans if p == phase]
        if stretches:
            out.extend(_judge_one(phase, budget, stretches, server))
    return out


def server_series(
    spec: SLOSpec, start: float, end: float, server: ServerMetrics
) -> list[dict[str, Any]]:
    """Every server-side query of the spec over the whole run (1 s steps), for the report.

    ``$window`` is the spec's ``window_s`` here, so the curve shows the same quantity per
    window that the client-side series show. A query that fails is kept with its error.
    """
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _phase, budget in spec.promql:
        if budget.name in seen:
            continue
        seen.add(budget.name)
        query = render_query(budget.query, spec.window_s)
        entry: dict[str, Any] = {"name": budget.name, "query": query, "unit": budget.unit}
        try:
            found = server.series(query, start, end, 1.0)
        except ChaosRecError as exc:
            entry["error"] = str(exc).splitlines()[0]
            found = []
        entry["series"] = [
            {"labels": dict(s.labels), "points": [[t, v] for t, v in s.points if math.isfinite(v)]}
            for s in found
        ]
        out.append(entry)
    return out
