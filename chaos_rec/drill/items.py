"""Experiment files as pytest collectors and items."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.core.capabilities import describe, optional_capabilities, unjudged
from chaos_rec.core.judge import judge_run
from chaos_rec.core.rundir import RunContext
from chaos_rec.drill.experiment import DrillSpec, load_drill, plan, prepared
from chaos_rec.drill.session import drill_session
from chaos_rec.errors import ChaosRecError, ConfigError
from chaos_rec.report.model import DrillRecord
from chaos_rec.report.terminal import failure_text


def _registered_markers(config: pytest.Config) -> set[str]:
    return {
        str(line).split(":", 1)[0].split("(", 1)[0].strip() for line in config.getini("markers")
    }


class DrillFile(pytest.File):
    """One experiment JSON file: collects exactly one :class:`DrillItem`."""

    def collect(self) -> list[pytest.Item]:
        """Validate the experiment and yield its item (CollectError with the message if invalid)."""
        session = drill_session(self.config)
        try:
            spec = load_drill(self.path, session.cfg.slo, session.cfg.slo_source)
        except ConfigError as exc:
            raise self.CollectError(f"{self.path.name}: {exc}") from exc
        item = DrillItem.from_parent(self, name=self.path.stem, spec=spec)
        known = _registered_markers(self.config)
        item.add_marker("drill")
        for name in spec.markers:
            if name not in known:
                self.config.addinivalue_line("markers", f"{name}: experiment tag (chaos-rec)")
                known.add(name)
            item.add_marker(name)
        return [item]


class DrillItem(pytest.Item):
    """Runs one experiment through chaostoolkit-lib and judges it."""

    def __init__(self, *, spec: DrillSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Location shown by pytest: the experiment file."""
        return self.path, None, f"drill {self.name}"

    def _capability_gate(self, session: Any, record: DrillRecord) -> Mapping[str, Any] | None:
        """Skip (with the reason) when the target lacks a capability the drill needs; else the
        SLO spec to judge, less the keys of optional capabilities it lacks (noted, not passed)."""
        needs = self.spec.needs
        lacking = [describe(cap, needs[cap]) for cap in session.lacking(needs)]
        if lacking:  # never a pass, never an unexplained failure: skipped, with the reason
            record.result = "skipped"
            record.problems = [f"the target lacks {line}" for line in lacking]
            session.add_record(record)
            pytest.skip(f"drill {self.name}: the target lacks {'; '.join(lacking)}")
        slo, record.notes = unjudged(
            self.spec.slo, session.lacking(optional_capabilities(self.spec.experiment))
        )
        for note in record.notes:
            session.progress(self, note)
        return slo

    def runtest(self) -> None:
        """Run the experiment (or show its plan in dry mode) and fail on any miss."""
        session = drill_session(self.config)
        cfg = session.cfg
        record = DrillRecord(
            name=self.name,
            nodeid=self.nodeid,
            title=self.spec.title,
            kind="experiment",
            seed=cfg.seed,
        )
        if self.spec.slo is not None and "max_recovery_s" in self.spec.slo:
            record.max_recovery_s = float(self.spec.slo["max_recovery_s"])
        if cfg.dry:
            self._capability_gate(session, record)
            record.result = "dry"
            record.plan = plan(self.spec)
            session.progress(self, "\n".join(record.plan))
            record.problems = session.preflight(self.spec.experiment)
            if record.problems:
                record.result = "failed"
                session.add_record(record)
                pytest.fail(
                    f"drill {self.name}: target not ready: {'; '.join(record.problems)}",
                    pytrace=False,
                )
            session.add_record(record)
            pytest.skip(
                f"--drill-dry: nothing injected; {record.plan[0]} ({len(record.plan)} plan lines)"
            )
        if self.spec.needs_reference_stack:
            session.ensure_reference_stack()
        slo = self._capability_gate(session, record)
        run_dir = session.new_run_dir(self.name)
        record.run_dir = str(run_dir)
        configuration = session.run_configuration(run_dir)
        experiment = prepared(self.spec, configuration, slo)
        guard = session.guard()
        from chaos_rec.drill.runner import run_experiment

        t0 = time.monotonic()
        guard.begin(self.name)
        outcome = None
        try:
            outcome = run_experiment(
                experiment, run_dir, lambda text: session.progress(self, text),
                settings_path=cfg.ctk_settings,
            )  # fmt: skip
        finally:
            record.duration_s = round(time.monotonic() - t0, 3)
            try:
                repaired = guard.end()
            except ChaosRecError as exc:
                record.problems.append(f"rollback guarantee failed: {exc}")
            else:
                if repaired:
                    session.progress(self, "plugin repair: " + ", ".join(repaired))
            if outcome is None:
                record.result = "interrupted"
                record.problems.append("the run was interrupted before Chaos Toolkit returned")
                session.add_record(record, run_dir=run_dir)
        journal = outcome.journal
        judgement = judge_run(
            RunContext(run_dir), slo, journal,
            configuration=experiment.get("configuration"), secrets=experiment.get("secrets"),
            baseline=session.baseline_for(self.name),
        )  # fmt: skip
        record.slos = list(judgement.verdict.results) if judgement.verdict else []
        record.recovery_s = judgement.recovery_s
        record.problems += judgement.checks
        record.regressions = judgement.regressions
        failed = bool(not judgement.passed or record.problems)
        record.result = "interrupted" if outcome.signalled else ("failed" if failed else "passed")
        session.add_record(record, journal=journal, run_dir=run_dir)
        session.record_properties(self, record)
        if outcome.signalled:
            raise KeyboardInterrupt
        if record.failed:
            pytest.fail(failure_text(record), pytrace=False)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        """A failed drill shows its verdict table (``pytest.fail``); our errors one line."""
        if isinstance(excinfo.value, ChaosRecError):
            return f"drill {self.name}: {excinfo.value}"
        return super().repr_failure(excinfo, style)
