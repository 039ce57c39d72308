"""A drill written in Python: phase marks, live progress, SLO assertions."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.drill.judge import evaluate, read_phases, read_timeline
from chaos_rec.drill.runner import live_figures
from chaos_rec.errors import ConfigError
from chaos_rec.report.model import DrillRecord
from chaos_rec.report.terminal import failure_text

PHASES = ("steady", "fault", "recovery")


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
        self.run_dir = run_dir
        self.default_slo = default_slo
        self._progress = progress
        self._t0 = time.monotonic()

    @property
    def name(self) -> str:
        """The drill's name (the test's name)."""
        return self.record.name

    def mark(self, phase: str, by: str = "python-drill") -> None:
        """Append a phase mark to the run dir's ``phases.jsonl``."""
        if phase not in PHASES:
            raise ConfigError(f"unknown phase {phase!r}: use one of {', '.join(PHASES)}")
        with (self.run_dir / "phases.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"t": time.time(), "phase": phase, "by": by}) + "\n")
        self.say(f"phase {phase} ({by})")

    def say(self, text: str) -> None:
        """Print a progress line with the latest load figures (verbose mode)."""
        figures = live_figures(self.run_dir)
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
        return read_timeline(self.run_dir)

    def phases(self) -> list[dict[str, Any]]:
        """The phase marks recorded so far."""
        return read_phases(self.run_dir)

    def assert_slo(self, spec: Mapping[str, Any] | None = None) -> None:
        """Judge the run against ``spec`` (default: --drill-slo / pyproject); fail with the verdict table."""
        spec = spec if spec is not None else self.default_slo
        if spec is None:
            raise ConfigError(
                "assert_slo needs an SLO spec: pass one, or set --drill-slo / [tool.chaos_rec.slo]"
            )
        timeline = self.timeline()
        if not timeline:
            self.record.problems.append("no load timeline in the run dir: use the `load` fixture")
            self.record.result = "failed"
            pytest.fail(failure_text(self.record), pytrace=False)
        quality_file = self.run_dir / "quality.json"
        quality = (
            json.loads(quality_file.read_text(encoding="utf-8")) if quality_file.is_file() else None
        )
        rows, recovery, problems = evaluate(spec, timeline, self.phases(), quality)
        self.record.slos, self.record.recovery_s = rows, recovery
        if "max_recovery_s" in spec:
            self.record.max_recovery_s = float(spec["max_recovery_s"])
        self.record.problems += problems
        passed = not problems and all(r.passed for r in rows)
        verdict = {
            "passed": passed,
            "recovery_s": recovery,
            "results": [r.to_dict() for r in rows],
        }
        shape = {
            "passed": passed,
            "problems": problems + [r.line() for r in rows if not r.passed],
            "run_dir": str(self.run_dir),
            "slo": verdict,
        }
        (self.run_dir / "slo_verdict.json").write_text(
            json.dumps(shape, indent=1), encoding="utf-8"
        )
        if problems or any(not r.passed for r in rows):
            self.record.result = "failed"
            pytest.fail(failure_text(self.record), pytrace=False)
