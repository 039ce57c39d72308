"""Inline SVG plots of one drill: latency, availability, fallback ratio, and server-side series.

The client-side plot (:func:`drill_svg`) comes from the load timeline; the server-side one
(:func:`server_svg`) from the PromQL budgets' queries over the run (``server_series.json``), on
the same time axis with the same phase shading, one panel per query.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from chaos_rec.report.figures import derived
from chaos_rec.slo.result import SLOResult

WIDTH = 760
LEFT, RIGHT = 60, 20
PANEL_GAP = 28
COLORS = {
    "p50_ms": "#1f77b4",
    "p95_ms": "#ff7f0e",
    "p99_ms": "#d62728",
    "availability": "#2ca02c",
    "fallback_ratio": "#9467bd",
}
BUDGET_FOR = {
    "latency": ("p99_ms",),
    "availability": ("availability",),
    "fallback": ("max_fallback_ratio",),
}


def phase_spans(
    phases: Sequence[dict[str, Any]], timeline: Sequence[dict[str, Any]]
) -> list[tuple[str, float, float]]:
    """(phase, start, end) spans from the phase marks (or the timeline rows' own phase)."""
    if not timeline:
        return []
    t_end = float(timeline[-1]["t"]) + 1.0
    marks = sorted((float(p["t"]), str(p["phase"])) for p in phases if "t" in p and "phase" in p)
    if not marks:
        marks = []
        for row in timeline:
            ph = str(row.get("phase", ""))
            if ph and (not marks or marks[-1][1] != ph):
                marks.append((float(row["t"]), ph))
    spans = []
    for i, (start, name) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else t_end
        if end > start:
            spans.append((name, start, end))
    return spans


def _polyline(points: list[tuple[float, float]], color: str, cls: str) -> str:
    if not points:
        return ""
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return (
        f'<polyline class="{cls}" fill="none" stroke="{color}" stroke-width="1.6" points="{pts}"/>'
    )


def _panel(
    title: str,
    top: float,
    height: float,
    t0: float,
    t1: float,
    y_max: float,
    series: dict[str, list[tuple[float, float | None]]],
    spans: list[tuple[str, float, float]],
    budgets: list[tuple[str, float]],
    fmt: str,
    y_min: float = 0.0,
    colors: dict[str, str] | None = None,
) -> list[str]:
    plot_w = WIDTH - LEFT - RIGHT
    palette = colors or COLORS

    def sx(t: float) -> float:
        return LEFT + (t - t0) / max(t1 - t0, 1e-9) * plot_w

    def sy(v: float) -> float:
        return top + height - (min(max(v, y_min), y_max) - y_min) / (y_max - y_min) * height

    out = [
        f'<g class="panel" data-panel="{escape(title)}">',
        f'<text x="{LEFT}" y="{top - 6:.1f}" class="ptitle">{escape(title)}</text>',
        f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{height}" fill="none" stroke="#999"/>',
    ]
    for name, start, end in spans:
        if name == "steady":
            continue
        fill = "#f4a6a6" if name == "fault" else "#cfe3f7"
        out.append(
            f'<rect class="window-{escape(name)}" x="{sx(start):.1f}" y="{top}" '
            f'width="{max(sx(end) - sx(start), 0.5):.1f}" height="{height}" fill="{fill}" '
            f'fill-opacity="0.45"><title>{escape(name)}</title></rect>'
        )
    for phase, budget in budgets:
        for name, start, end in spans:
            if name == phase:
                y = sy(budget)
                out.append(
                    f'<line class="budget" x1="{sx(start):.1f}" x2="{sx(end):.1f}" y1="{y:.1f}" '
                    f'y2="{y:.1f}" stroke="#333" stroke-dasharray="5,3"><title>{escape(phase)} '
                    f"budget {budget:g}</title></line>"
                )
    for key, pts in series.items():
        segment: list[tuple[float, float]] = []
        for t, v in pts:
            if v is None:
                out.append(_polyline(segment, palette.get(key, "#000"), f"line {key}"))
                segment = []
            else:
                segment.append((sx(t), sy(v)))
        out.append(_polyline(segment, palette.get(key, "#000"), f"line {key}"))
    for frac in (0.0, 0.5, 1.0):
        v = y_min + (y_max - y_min) * frac
        out.append(
            f'<text x="{LEFT - 4}" y="{sy(v) + 4:.1f}" text-anchor="end" class="tick">{fmt.format(v)}</text>'
        )
    out += _time_ticks(t0, t1, top + height, sx)
    # legends above the plot, right-aligned on the title's line: never over a budget line
    legend_x = WIDTH - RIGHT
    for key in reversed(list(series)):
        out.append(
            f'<text x="{legend_x}" y="{top - 6:.1f}" text-anchor="end" '
            f'fill="{palette.get(key, "#000")}" class="legend">{escape(key)}</text>'
        )
        legend_x -= 7 * len(key) + 14
    out.append("</g>")
    return out


def tick_step(span_s: float) -> float:
    """Seconds between time ticks: the smallest of 1, 2, 5, 10, 15, 30, 60, … giving ≤ 12 ticks."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if span_s / step <= 12:
            return float(step)
    return 3600.0 * math.ceil(span_s / 3600.0 / 12)


def _time_ticks(t0: float, t1: float, bottom: float, sx: Callable[[float], float]) -> list[str]:
    """Tick marks and labels (seconds since the first row) under a panel's time axis."""
    step = tick_step(t1 - t0)
    out = []
    n = 0
    while n * step <= t1 - t0 + 1e-9:
        x = sx(t0 + n * step)
        out.append(
            f'<line class="xtick" x1="{x:.1f}" x2="{x:.1f}" y1="{bottom:.1f}" '
            f'y2="{bottom + 4:.1f}" stroke="#999"/>'
            f'<text x="{x:.1f}" y="{bottom + 14:.1f}" text-anchor="middle" class="tick">'
            f"{n * step:g}s</text>"
        )
        n += 1
    return out


def drill_svg(
    timeline: Sequence[dict[str, Any]], phases: Sequence[dict[str, Any]], slos: Sequence[SLOResult]
) -> str:
    """The SVG (as a string) for one drill; a short placeholder when there is no timeline."""
    if not timeline:
        return (
            '<svg class="drill-plot empty" xmlns="http://www.w3.org/2000/svg" width="760" height="40">'
            '<text x="10" y="24">no load timeline recorded for this drill</text></svg>'
        )
    rows = [derived(r) for r in timeline]
    t0 = float(rows[0]["t"])
    t1 = float(rows[-1]["t"]) + 1.0
    spans = phase_spans(phases, timeline)

    def series(key: str) -> list[tuple[float, float | None]]:
        return [(float(r["t"]) + 0.5, None if r.get(key) is None else float(r[key])) for r in rows]

    def budgets(panel: str) -> list[tuple[str, float]]:
        return [(r.phase, r.budget) for r in slos if r.slo in BUDGET_FOR[panel]]

    lat_keys = [
        k for k in ("p50_ms", "p95_ms", "p99_ms") if any(r.get(k) is not None for r in rows)
    ]
    lat_max = (
        max(
            [float(r[k]) for r in rows for k in lat_keys if r.get(k) is not None]
            + [b for _, b in budgets("latency")]
            + [1.0]
        )
        * 1.1
    )
    avail_values = [float(r["availability"]) for r in rows if r.get("availability") is not None]
    lowest = min(avail_values + [b for _, b in budgets("availability")] + [1.0])
    # zoom on the top of the scale: 0.9 … 1 unless availability fell lower
    avail_min = 0.9 if lowest >= 0.9 else max(0.0, math.floor(lowest * 10) / 10)
    parts = [
        f'<svg class="drill-plot" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="492" '
        f'viewBox="0 0 {WIDTH} 492" role="img">'
    ]
    parts += _panel(
        "latency (ms)",
        24,
        180,
        t0,
        t1,
        lat_max,
        {k: series(k) for k in lat_keys},
        spans,
        budgets("latency"),
        "{:.0f}",
    )
    parts += _panel(
        "availability",
        24 + 180 + PANEL_GAP + 8,
        90,
        t0,
        t1,
        1.0,
        {"availability": series("availability")},
        spans,
        budgets("availability"),
        "{:.3f}",
        y_min=avail_min,
    )
    parts += _panel(
        "fallback ratio",
        24 + 180 + 90 + 2 * (PANEL_GAP + 8),
        90,
        t0,
        t1,
        1.0,
        {"fallback_ratio": series("fallback_ratio")},
        spans,
        budgets("fallback"),
        "{:.2f}",
    )
    parts.append(
        f'<text x="{LEFT}" y="486" class="tick">time since the first second of load, {t1 - t0:.0f} s (shaded: fault red, '
        "recovery blue; dashed: SLO budgets)</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


SERVER_COLORS = ("#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#1f77b4")
SERVER_PANEL_H = 90


def _server_budgets(name: str, slos: Sequence[SLOResult]) -> list[tuple[str, float]]:
    return [
        (r.phase, r.budget) for r in slos if r.slo in (f"promql_max:{name}", f"promql_min:{name}")
    ]


def server_svg(
    server: Sequence[dict[str, Any]],
    timeline: Sequence[dict[str, Any]],
    phases: Sequence[dict[str, Any]],
    slos: Sequence[SLOResult],
) -> str:
    """The server-side series (one panel per PromQL budget, one line per series); "" if none."""
    if not server or not timeline:
        return ""
    t0 = float(timeline[0]["t"])
    t1 = float(timeline[-1]["t"]) + 1.0
    spans = phase_spans(phases, timeline)
    height = 24 + len(server) * (SERVER_PANEL_H + PANEL_GAP + 8) + 16
    parts = [
        f'<svg class="drill-plot server-plot" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img">'
    ]
    for i, entry in enumerate(server):
        name = str(entry.get("name", "?"))
        lines: dict[str, list[tuple[float, float | None]]] = {}
        for n, s in enumerate(entry.get("series") or []):
            labels = s.get("labels") or {}
            label = str(labels.get("component") or labels.get("instance") or f"series {n}")
            lines[label] = [(float(t), float(v)) for t, v in s.get("points") or []]
        budgets = _server_budgets(name, slos)
        values = [v for pts in lines.values() for _, v in pts if v is not None]
        y_max = max([*values, *(b for _, b in budgets), 1e-9]) * 1.1
        title = f"server: {name}" + (f" ({entry['unit']})" if entry.get("unit") else "")
        if entry.get("error"):
            title += f" — query failed: {entry['error']}"[:160]
        elif not lines:
            title += " — no series"
        top = 24 + i * (SERVER_PANEL_H + PANEL_GAP + 8)
        colors = {label: SERVER_COLORS[n % len(SERVER_COLORS)] for n, label in enumerate(lines)}
        panel = _panel(
            title, top, SERVER_PANEL_H, t0, t1, y_max, lines, spans, budgets, "{:.3g}",
            colors=colors,
        )  # fmt: skip
        parts += panel
    parts.append(
        f'<text x="{LEFT}" y="{height - 6}" class="tick">server-side (Prometheus), same time axis; '
        "dashed: the phase's budget</text>"
    )
    parts.append("</svg>")
    return "".join(parts)
