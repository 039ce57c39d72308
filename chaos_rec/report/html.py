"""One self-contained HTML page for a drill session (inline CSS, SVG and a tiny script)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from html import escape
from typing import Any

from chaos_rec.report.model import DrillRecord
from chaos_rec.report.score import drill_score, run_score
from chaos_rec.report.svg import drill_svg, server_svg

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;max-width:900px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f3f3f3}.passed{color:#137333}.failed,.interrupted,.miss{color:#b3261e;font-weight:bold}
.dry{color:#666}.problems li{color:#b3261e}.ptitle{font-size:12px;font-weight:bold}
.tick,.legend{font-size:11px}pre{background:#f6f6f6;padding:8px;font-size:12px}
"""

# Marks the page as loaded and counts the plots that actually laid out (checked by the test).
SCRIPT = """
document.addEventListener('DOMContentLoaded', function () {
  var plots = document.querySelectorAll('svg.drill-plot');
  var ok = 0;
  plots.forEach(function (svg) { var b = svg.getBBox(); if (b.width > 0 && b.height > 0) { ok++; } });
  document.body.setAttribute('data-plots', String(plots.length));
  document.body.setAttribute('data-plots-rendered', String(ok));
  document.body.setAttribute('data-loaded', 'yes');
});
"""


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    return (
        f"{value:.1f} ms" if unit == "ms" else (f"{value:.1f} s" if unit == "s" else f"{value:.4g}")
    )


def _verdict_table(rec: DrillRecord) -> str:
    if not rec.slos:
        return "<p>no SLO figures</p>"
    rows = []
    for r in rec.slos:
        cmp = "≥" if r.direction == "min" else "≤"
        cls = "" if r.passed else ' class="miss"'
        rows.append(
            f"<tr{cls}><td>{escape(r.slo)}</td><td>{escape(r.phase)}</td><td>{_fmt(r.observed, r.unit)}</td>"
            f"<td>{cmp} {_fmt(r.budget, r.unit)}</td><td>{'ok' if r.passed else 'MISSED'}</td></tr>"
        )
    return (
        '<table class="verdict"><tr><th>SLO</th><th>phase</th><th>observed</th><th>budget</th>'
        "<th>result</th></tr>" + "".join(rows) + "</table>"
    )


def _drill_section(
    rec: DrillRecord,
    timeline: list[dict[str, Any]],
    phases: list[dict[str, Any]],
    server: list[dict[str, Any]],
) -> str:
    parts = [
        f'<section class="drill" id="drill-{escape(rec.name)}">',
        f'<h2>{escape(rec.name)} — <span class="{rec.result}">{rec.result.upper()}</span></h2>',
        f"<p>{escape(rec.title)} · {rec.kind} · {rec.duration_s:.1f} s · seed {rec.seed}"
        + (f" · recovery {_fmt(rec.recovery_s, 's')}" if rec.recovery_s is not None else "")
        + (f" (budget {rec.max_recovery_s:g} s)" if rec.max_recovery_s is not None else "")
        + "</p>",
    ]
    if rec.problems or rec.regressions:
        items = [escape(p) for p in rec.problems] + [
            f"regression: {escape(r)}" for r in rec.regressions
        ]
        parts.append('<ul class="problems">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
    if rec.notes:
        parts.append(
            '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in rec.notes) + "</ul>"
        )
    if rec.result == "dry":
        parts.append("<pre>" + escape("\n".join(rec.plan)) + "</pre>")
    elif rec.result == "skipped":  # not run: the problems say which capability is missing
        pass
    else:
        parts.append(drill_svg(timeline, phases, rec.slos))
        parts.append(server_svg(server, timeline, phases, rec.slos))
    parts.append(_verdict_table(rec))
    parts.append("</section>")
    return "".join(parts)


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def render_report(
    records: list[DrillRecord],
    series: Mapping[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]],
    server: Mapping[str, list[dict[str, Any]]] | None = None,
) -> str:
    """The whole HTML page: summary table, then one section (plots + verdict) per drill."""
    passed = sum(1 for r in records if r.result == "passed")
    summary_rows = "".join(
        f'<tr><td><a href="#drill-{escape(r.name)}">{escape(r.name)}</a></td>'
        f'<td class="{r.result}">{r.result.upper()}</td>'
        f"<td>{_score(drill_score(r))}</td>"
        f"<td>{sum(1 for s in r.slos if s.passed)}/{len(r.slos)}</td>"
        f"<td>{_fmt(r.recovery_s, 's')}</td><td>{len(r.problems) + len(r.regressions) + sum(1 for s in r.slos if not s.passed)}</td></tr>"
        for r in records
    )
    body = "".join(
        _drill_section(r, *series.get(r.name, ([], [])), (server or {}).get(r.name, []))
        for r in records
    )
    created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>chaos-rec drill report</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>chaos-rec drill report</h1><p>{created} · {passed}/{len(records)} drills passed"
        f" · resilience score {_score(run_score(records)[0])}/100</p>"
        '<table class="summary"><tr><th>drill</th><th>result</th><th>score</th><th>SLOs met</th>'
        "<th>recovery</th>"
        f"<th>misses + problems</th></tr>{summary_rows}</table>{body}"
        f"<script>{SCRIPT}</script></body></html>"
    )
