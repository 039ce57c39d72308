"""Drill reports: terminal summary, report folder files, HTML with SVG plots, baselines."""

from __future__ import annotations

from chaos_rec.report.baseline import compare, load_baseline
from chaos_rec.report.files import load_report, write_session_report
from chaos_rec.report.model import DrillRecord
from chaos_rec.slo.result import SLOResult

__all__ = [
    "DrillRecord",
    "SLOResult",
    "compare",
    "load_baseline",
    "load_report",
    "write_session_report",
]
