"""Every plot has time ticks, and its legends sit above the plot, clear of the budget lines."""

from __future__ import annotations

import re

from chaos_rec.report.svg import drill_svg, tick_step
from chaos_rec.slo.result import SLOResult

ROWS = [{"t": 1000 + i, "phase": "steady" if i < 20 else "fault", "requests": 20, "failures": 0,
         "status": {"200": 20}, "p50_ms": 10.0, "p95_ms": 20.0, "p99_ms": 30.0,
         "tiers": {"none": 20}} for i in range(47)]  # fmt: skip
PHASES = [{"phase": "steady", "t": 1000.0}, {"phase": "fault", "t": 1020.0}]


def test_tick_steps_give_at_most_twelve_ticks() -> None:
    assert [tick_step(s) for s in (8, 47, 130, 600, 3000)] == [1, 5, 15, 60, 300]


def test_each_panel_has_time_ticks_and_legends_above_its_plot() -> None:
    budget = SLOResult("availability", "fault", None, 1.0, 0.97, "", True)
    svg = drill_svg(ROWS, PHASES, [budget])
    panels = re.findall(r'<g class="panel".*?</g>', svg)
    assert len(panels) == 3
    for panel in panels:
        labels = re.findall(r'class="tick">(\d+)s</text>', panel)
        assert labels[:3] == ["0", "5", "10"] and labels[-1] == "45"
        top = float(re.search(r'<rect x="\d+" y="([\d.]+)" width', panel).group(1))  # type: ignore[union-attr]
        legends = [
            float(y) for y in re.findall(r'<text x="[\d.]+" y="([\d.]+)"[^>]*class="legend"', panel)
        ]
        assert legends and all(y < top for y in legends)  # above the plot area
