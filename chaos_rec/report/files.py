"""Report folder: per drill the journal, timeline (CSV+JSON), phases; per session summary + HTML."""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaos_rec.core.rundir import RunContext
from chaos_rec.errors import DrillError
from chaos_rec.report.figures import derived
from chaos_rec.report.html import render_report
from chaos_rec.report.model import DrillRecord

SUMMARY = "summary.json"
HTML = "report.html"
SERVER_SERIES = "server_series.json"  # a drill's server-side series (from its run dir)


def drill_dir(report_dir: Path, name: str) -> Path:
    """The folder of one drill inside a report folder."""
    return report_dir / "drills" / re.sub(r"[^\w.-]+", "_", name)


def _csv_rows(timeline: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    base = [
        "t",
        "phase",
        "requests",
        "failures",
        "availability",
        "fallback_ratio",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
    ]
    statuses = sorted({str(k) for r in timeline for k in (r.get("status") or {})})
    tiers = sorted({str(k) for r in timeline for k in (r.get("tiers") or {})})
    header = base + [f"status_{s}" for s in statuses] + [f"tier_{t}" for t in tiers]
    rows = []
    for raw in timeline:
        row = derived(raw)
        flat = {k: row.get(k) for k in base}
        flat |= {f"status_{s}": (raw.get("status") or {}).get(s, 0) for s in statuses}
        flat |= {f"tier_{t}": (raw.get("tiers") or {}).get(t, 0) for t in tiers}
        rows.append(flat)
    return header, rows


def write_drill_files(
    report_dir: Path, record: DrillRecord, journal: Mapping[str, Any] | None, run_dir: Path | None
) -> Path:
    """Write journal.json, timeline.csv/.json, phases.json, server_series.json and record.json."""
    out = drill_dir(report_dir, record.name)
    out.mkdir(parents=True, exist_ok=True)
    if journal is not None:
        (out / "journal.json").write_text(
            json.dumps(journal, indent=2, default=str), encoding="utf-8"
        )
    ctx = RunContext(run_dir) if run_dir is not None and run_dir.is_dir() else None
    timeline = [dict(r) for r in ctx.timeline()] if ctx else []
    phases = [dict(m) for m in ctx.phases()] if ctx else []
    (out / "timeline.json").write_text(json.dumps(timeline, indent=1), encoding="utf-8")
    (out / "phases.json").write_text(json.dumps(phases, indent=1), encoding="utf-8")
    server = ctx.server_series() if ctx else []
    (out / SERVER_SERIES).write_text(json.dumps(server, indent=1), encoding="utf-8")
    header, rows = _csv_rows(timeline)
    with (out / "timeline.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    (out / "record.json").write_text(json.dumps(record.to_dict(), indent=2), encoding="utf-8")
    return out


def load_report(report_dir: Path) -> list[DrillRecord]:
    """The drill records of a report folder (its summary.json)."""
    path = report_dir / SUMMARY
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DrillError(f"no drill report in {report_dir}: cannot read {SUMMARY}") from exc
    except (ValueError, RecursionError) as exc:
        raise DrillError(f"{path} is not JSON: {exc}") from exc
    drills = data.get("drills") if isinstance(data, dict) else None
    if not isinstance(drills, list):
        raise DrillError(f"{path} has no 'drills' list")
    records = []
    for i, entry in enumerate(drills):
        try:
            records.append(DrillRecord.from_dict(entry))
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            raise DrillError(f"{path}: drills[{i}] is not a drill record ({exc})") from exc
    return records


def drill_series(report_dir: Path, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The saved timeline and phases of one drill of a report folder."""
    folder = drill_dir(report_dir, name)
    series: list[list[dict[str, Any]]] = []
    for fname in ("timeline.json", "phases.json"):
        path = folder / fname
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
        except (ValueError, RecursionError) as exc:
            raise DrillError(f"{path} is not JSON: {exc}") from exc
        series.append(data if isinstance(data, list) else [])
    return series[0], series[1]


def drill_server_series(report_dir: Path, name: str) -> list[dict[str, Any]]:
    """The saved server-side series of one drill of a report folder ([] when none)."""
    path = drill_dir(report_dir, name) / SERVER_SERIES
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    except (ValueError, RecursionError) as exc:
        raise DrillError(f"{path} is not JSON: {exc}") from exc
    return data if isinstance(data, list) else []


def write_session_report(report_dir: Path, records: list[DrillRecord]) -> Path:
    """Write summary.json and the self-contained report.html; returns the HTML path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    summary = {"version": 1, "created": time.time(), "drills": [r.to_dict() for r in records]}
    (report_dir / SUMMARY).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    series = {r.name: drill_series(report_dir, r.name) for r in records}
    server = {r.name: drill_server_series(report_dir, r.name) for r in records}
    html_path = report_dir / HTML
    html_path.write_text(render_report(records, series, server), encoding="utf-8")
    return html_path
