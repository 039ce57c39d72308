"""Evaluation of an SLO spec over the per-second load timeline and quality measurements."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaos_rec.slo.metrics import (
    availability,
    fallback_ratio,
    generator_lag_ms,
    latency_percentile,
    send_ratio,
    timeout_ratio,
)
from chaos_rec.slo.phases import phase_at
from chaos_rec.slo.promql_judge import judge_promql
from chaos_rec.slo.result import SLOResult, Verdict
from chaos_rec.slo.server import ServerMetrics
from chaos_rec.slo.spec import PHASE_KEYS, PhaseBudget, SLOSpec

__all__ = ["PhaseMiss", "evaluate", "first_missed_phase", "run_end"]


def _label(
    timeline: Sequence[Mapping[str, Any]], phases: Sequence[Mapping[str, Any]]
) -> list[tuple[str, Mapping[str, Any]]]:
    # seconds of a capacity probe (closed-loop clients, see measure_capacity) are a measurement
    # of the deployment, not user traffic: no budget applies to them
    rows = sorted((r for r in timeline if not r.get("closed")), key=lambda r: int(r["t"]))
    if phases:
        return [(_phase_of_second(phases, int(r["t"])), r) for r in rows]
    return [(str(r.get("phase", "steady")), r) for r in rows]


def _phase_of_second(phases: Sequence[Mapping[str, Any]], t: int) -> str:
    """The phase a timeline second is judged in: any second the fault phase touches is `fault`.

    A second in which a phase changes holds requests of both phases; judging the second in which
    a fault begins as steady would charge the fault to the steady budgets.
    """
    start = phase_at(phases, float(t))
    if start != "fault" and any(
        str(m["phase"]) == "fault" and t < float(m["t"]) < t + 1 for m in phases
    ):
        return "fault"
    return start


def _stretches(
    labelled: list[tuple[str, Mapping[str, Any]]], phase: str
) -> list[list[Mapping[str, Any]]]:
    out: list[list[Mapping[str, Any]]] = []
    current: list[Mapping[str, Any]] = []
    for p, row in labelled:
        if p == phase:
            current.append(row)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def _windows(rows: list[Mapping[str, Any]], window_s: float) -> list[list[Mapping[str, Any]]]:
    if not rows:
        return []
    size = max(1, int(window_s))
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    if len(chunks) > 1 and len(chunks[-1]) < size:
        tail = chunks.pop()
        chunks[-1] = chunks[-1] + tail
    return chunks


def _measure(key: str, rows: Sequence[Mapping[str, Any]]) -> float | None:
    if key == "min_send_ratio":
        return send_ratio(rows)
    if key == "max_generator_lag_ms":
        return generator_lag_ms(rows)
    if key.startswith("accepted_p") and key.endswith("_ms"):
        return latency_percentile(rows, float(key[10:12]), accepted=True)
    if key.endswith("_ms"):
        return latency_percentile(rows, float(key[1:3]))
    if key == "availability":
        return availability(rows)
    if key == "max_fallback_ratio":
        return fallback_ratio(rows)
    if key == "max_timeout_ratio":
        return timeout_ratio(rows)
    raise AssertionError(key)


def _span(rows: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    return float(rows[0]["t"]), float(rows[-1]["t"]) + 1.0


def _ok(value: float, budget: float, direction: str) -> bool:
    return value <= budget if direction == "max" else value >= budget


def _judge_phase(
    phase: str, budget: PhaseBudget, stretches: list[list[Mapping[str, Any]]], window_s: float
) -> list[SLOResult]:
    results: list[SLOResult] = []
    windows = [w for s in stretches for w in _windows(s, window_s)]
    for key, limit in budget.items():
        if key == "min_quality_ratio":
            continue  # judged from quality measurements
        unit, direction = PHASE_KEYS[key]
        worst: tuple[float, tuple[float, float]] | None = None
        for w in windows:
            value = _measure(key, w)
            if value is None:
                continue
            if worst is None or not _ok(value, worst[0], direction):
                worst = (value, _span(w))
        if worst is None:
            span = _span(windows[0]) if windows else (0.0, 0.0)
            note = "no requests completed in this phase"
            results.append(
                SLOResult(key, phase, span, None, limit, unit, key == "max_fallback_ratio", note)
            )
            continue
        value, span = worst
        results.append(
            SLOResult(key, phase, span, value, limit, unit, _ok(value, limit, direction))
        )
    return results


def _recovery(
    labelled: list[tuple[str, Mapping[str, Any]]],
    phases: Sequence[Mapping[str, Any]],
    budget: PhaseBudget | None,
    window_s: float,
) -> tuple[float | None, float | None, tuple[float, float]]:
    """(recovery mark time, seconds to the first good window, that window)."""
    marks = [float(m["t"]) for m in phases if m.get("phase") == "recovery"]
    if not marks:
        return None, None, (0.0, 0.0)
    start = marks[-1]
    rows = [r for p, r in labelled if float(r["t"]) >= math.ceil(start)]
    size = max(1, int(window_s))
    checks = [(k, v) for k, v in (budget.items() if budget else []) if k != "min_quality_ratio"]
    if not checks:
        checks = [("availability", 0.99)]
    for i in range(0, max(0, len(rows) - size + 1)):
        win = rows[i : i + size]
        good = True
        for key, limit in checks:
            value = _measure(key, win)
            if value is None or not _ok(value, limit, PHASE_KEYS[key][1]):
                good = False
                break
        if good:
            return start, max(0.0, float(win[0]["t"]) - start), _span(win)
    end = float(rows[-1]["t"]) + 1.0 if rows else start
    return start, None, (start, max(end, start))


@dataclass(frozen=True)
class PhaseMiss:
    """A stretch of a phase that has ended and missed a load budget: its verdict is settled."""

    phase: str
    until: float  # the first second after the stretch (the next phase's first second)
    misses: tuple[SLOResult, ...]


def first_missed_phase(
    spec: SLOSpec, timeline: Sequence[Mapping[str, Any]], phases: Sequence[Mapping[str, Any]]
) -> PhaseMiss | None:
    """The first ended stretch of a phase that missed one of its load budgets, or None.

    A phase's budget is met when every window meets it, and a stretch's windows no longer change
    once a second of the next phase is in the timeline, so a miss found here is the miss the
    whole run's verdict reports (fail-fast stops the run on it). Only stretches from the first
    fault on count: a steady phase that missed still gets its fault injected and measured (a
    drill with its mechanism off is often already worse before the fault). Quality and
    server-side (PromQL) budgets are not looked at: they are judged from other measurements.
    """
    labelled = _label(timeline, phases)
    start, faulted = 0, False
    while start < len(labelled):
        phase = labelled[start][0]
        faulted = faulted or phase == "fault"
        end = start
        while end < len(labelled) and labelled[end][0] == phase:
            end += 1
        if end == len(labelled):
            return None  # this stretch goes on
        budget = spec.phases.get(phase)
        if budget is not None and faulted:
            rows = [[row for _, row in labelled[start:end]]]
            misses = tuple(
                r for r in _judge_phase(phase, budget, rows, spec.window_s)
                if not r.passed and r.observed is not None
            )  # fmt: skip
            if misses:
                return PhaseMiss(phase, float(labelled[end][1]["t"]), misses)
        start = end
    return None


def evaluate(
    spec: SLOSpec,
    timeline: Sequence[Mapping[str, Any]],
    phases: Sequence[Mapping[str, Any]],
    quality: Mapping[str, Any] | None = None,
    server: ServerMetrics | None = None,
    *,
    until: float | None = None,
) -> Verdict:
    """Judge a load timeline (and quality measurements, and server metrics) against a spec.

    ``until``: the run was stopped there (fail-fast, :func:`first_missed_phase`); its seconds
    from then on are the stop and the rollback, not a phase, and are not judged: a phase (and
    the recovery time) with no second before it is left out. Quality is measured apart and
    judged as ever.
    """
    labelled = _label(timeline, phases)
    if until is not None:
        labelled = [(p, r) for p, r in labelled if float(r["t"]) < until]
    results: list[SLOResult] = []
    for phase, budget in spec.phases.items():
        stretches = _stretches(labelled, phase)
        if not stretches:
            continue  # the phase never happened in this run
        results.extend(_judge_phase(phase, budget, stretches, spec.window_s))
    rec_start, recovery_s, rec_win = _recovery(
        labelled, phases, spec.phases.get("recovery"), spec.window_s
    )
    if (
        until is not None
        and rec_start is not None
        and not any(float(r["t"]) >= math.ceil(rec_start) for _, r in labelled)
    ):
        rec_start = recovery_s = None  # stopped before the recovery had a second
    if spec.max_recovery_s is not None and rec_start is not None:
        ok = recovery_s is not None and recovery_s <= spec.max_recovery_s
        note = ""
        if recovery_s is None:
            measured = rec_win[1] - rec_win[0]
            note = (
                f"no good {spec.window_s:g}s window in the {measured:.0f}s measured after the "
                "fault was removed"
            )
        results.append(
            SLOResult(
                "max_recovery_s",
                "recovery",
                rec_win,
                recovery_s,
                spec.max_recovery_s,
                "s",
                ok,
                note,
            )
        )
    results.extend(_judge_quality(spec, quality))
    promql = judge_promql(spec, phases, run_end(timeline, phases), server)
    if until is not None:  # server-side budgets of a phase that had no second before the stop
        judged = {p for p, _ in labelled}
        promql = [r for r in promql if r.phase in judged]
    results.extend(promql)
    return Verdict(all(r.passed for r in results), results, recovery_s)


def run_end(timeline: Sequence[Mapping[str, Any]], phases: Sequence[Mapping[str, Any]]) -> float:
    """The end of the run: the last timeline second's end (else the last phase mark)."""
    ends = [float(r["t"]) + 1.0 for r in timeline] + [float(m["t"]) for m in phases]
    return max(ends, default=0.0)


def _judge_quality(spec: SLOSpec, quality: Mapping[str, Any] | None) -> list[SLOResult]:
    wanted: dict[str, float] = {}
    if spec.min_quality_ratio is not None:
        wanted["*"] = spec.min_quality_ratio
    for phase, budget in spec.phases.items():
        if budget.min_quality_ratio is not None:
            wanted[phase] = budget.min_quality_ratio
    if not wanted:
        return []
    measurements = list((quality or {}).get("measurements") or [])
    out: list[SLOResult] = []
    for phase, limit in wanted.items():
        rows = [m for m in measurements if phase == "*" or m.get("phase") == phase]
        label = "any" if phase == "*" else phase
        if not rows:
            note = "no quality measurement; call the probe quality_ratio"
            out.append(
                SLOResult("min_quality_ratio", label, (0.0, 0.0), None, limit, "", False, note)
            )
            continue
        worst = min(rows, key=lambda m: float(m["ratio"]))
        t = float(worst.get("t", 0.0))
        span = (t - float(worst.get("duration_s", 0.0)), t)
        ratio = float(worst["ratio"])
        out.append(
            SLOResult(
                "min_quality_ratio",
                str(worst.get("phase", label)),
                span,
                ratio,
                limit,
                "",
                ratio >= limit,
            )
        )
    return out
