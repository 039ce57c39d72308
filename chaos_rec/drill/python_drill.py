"""A drill written in Python: phase marks, live progress, SLO assertions."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.core.judge import judge_run
from chaos_rec.core.rundir import RunContext
from chaos_rec.drill.runner import format_figures
from chaos_rec.errors import ConfigError
from chaos_rec.report.model import DrillRecord
from chaos_rec.report.terminal import failure_text
from chaos_rec.slo.server import ServerMetrics


class PythonDrill:
    """The ``drill`` fixture: one run dir, phase marks and ``assert_slo``."""

    def __init__(
        self,
        record: DrillRecord,
        run_dir: Path,
        default_slo: Mapping[str, Any] | None,
        progress: Callable[[str], None],
    ) -> None:
        self.record = record
        self.ctx = RunContext(run_dir)
        self.run_dir = self.ctx.run_dir
        self.default_slo = default_slo
        self._progress = progress
        self._t0 = time.monotonic()

    @property
    def name(self) -> str:
        """The drill's name (the test's name)."""
        return self.record.name

    def mark(self, phase: str, by: str = "python-drill") -> None:
        """Append a phase mark to the run dir's ``phases.jsonl``."""
        self.ctx.mark(phase, by)
        self.say(f"phase {phase} ({by})")

    def say(self, text: str) -> None:
        """Print a progress line with the latest load figures (verbose mode)."""
        row = self.ctx.last_row()
        figures = format_figures(row) if row is not None else ""
        self._progress(
            f"{time.monotonic() - self._t0:6.1f}s {text}" + (f"  [{figures}]" if figures else "")
        )

    def hold(self, seconds: float, every: float = 2.0) -> None:
        """Wait ``seconds`` while the load runs, printing live figures every ``every`` s."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(every, left))
            self.say("…")

    def steady(self, seconds: float) -> None:
        """Mark the steady phase and hold for ``seconds``."""
        self.mark("steady")
        self.hold(seconds)

    @contextlib.contextmanager
    def fault(self, by: str = "python-drill") -> Iterator[None]:
        """Mark ``fault`` on entry and ``recovery`` on exit (also on error)."""
        self.mark("fault", by)
        try:
            yield
        finally:
            self.mark("recovery", by)

    def timeline(self) -> list[dict[str, Any]]:
        """The load timeline rows recorded so far."""
        return [dict(r) for r in self.ctx.timeline()]

    def phases(self) -> list[dict[str, Any]]:
        """The phase marks recorded so far."""
        return [dict(m) for m in self.ctx.phases()]

    def assert_slo(
        self, spec: Mapping[str, Any] | None = None, *, server: ServerMetrics | None = None
    ) -> None:
        """Judge the run against ``spec`` (default: --drill-slo / pyproject); fail with the verdict table.

        ``server`` answers the spec's server-side (``promql``) budgets: pass
        ``drill_stack.server_metrics()``; without it they fail with the "no Prometheus" line.
        """
        spec = spec if spec is not None else self.default_slo
        if spec is None:
            raise ConfigError(
                "assert_slo needs an SLO spec: pass one, or set --drill-slo / [tool.chaos_rec.slo]"
            )
        if not self.ctx.timeline():
            self.record.problems.append("no load timeline in the run dir: use the `load` fixture")
            self.record.result = "failed"
            pytest.fail(failure_text(self.record), pytrace=False)
        judgement = judge_run(self.ctx, spec, stored=False, server=server)
        self.ctx.write_verdict(judgement.to_dict())
        self.record.slos = list(judgement.verdict.results) if judgement.verdict else []
        self.record.recovery_s = judgement.recovery_s
        if "max_recovery_s" in spec:
            self.record.max_recovery_s = float(spec["max_recovery_s"])
        self.record.problems += judgement.checks
        if not judgement.passed:
            self.record.result = "failed"
            pytest.fail(failure_text(self.record), pytrace=False)
