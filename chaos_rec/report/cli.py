"""``chaos-rec report``: re-render a report folder's HTML, or compare it with a baseline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chaos_rec.errors import ConfigError


def register(subparsers: Any) -> None:
    """Add the ``report`` sub-command."""
    parser = subparsers.add_parser(
        "report", help="render a drill report folder (from --drill-report)"
    )
    parser.add_argument("report_dir", type=Path, help="folder written by pytest --drill-report")
    parser.add_argument(
        "--side-by-side",
        nargs=2,
        action="append",
        default=[],
        metavar=("TITLE", "DIR"),
        help="print a markdown table: this report beside another one (repeatable)",
    )
    parser.add_argument("--title", default="this report", help="this report's column title")
    parser.add_argument(
        "--baseline", type=Path, default=None, help="previous report folder to compare with"
    )
    parser.add_argument(
        "--tolerance", type=float, default=0.10, help="relative regression tolerance"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Re-render report.html, print one row per drill; exit 1 on failed drills or regressions."""
    from chaos_rec.report.baseline import compare, load_baseline
    from chaos_rec.report.files import load_report, write_session_report
    from chaos_rec.report.terminal import summary_lines

    if not 0 <= args.tolerance < 10:
        raise ConfigError(f"--tolerance must be within [0, 10), got {args.tolerance}")
    records = load_report(args.report_dir)
    if args.side_by_side:
        from chaos_rec.report.side_by_side import side_by_side

        cols = [(args.title, records)] + [(t, load_report(Path(d))) for t, d in args.side_by_side]
        for line in side_by_side(cols):
            print(line)
        return 0
    if args.baseline is not None:
        base = load_baseline(args.baseline)
        for rec in records:
            if rec.name in base:
                rec.regressions = compare(rec, base[rec.name], args.tolerance)
    html = write_session_report(args.report_dir, records)
    for line in summary_lines(records):
        print(line)
    print(f"report: {html}")
    return 1 if any(r.failed or r.regressions for r in records) else 0
