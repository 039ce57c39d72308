"""The drill session: owns collection of experiments, run dirs, records and the summary."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.core.guard import DrillGuard, Repairer
from chaos_rec.core.judge import Baseline
from chaos_rec.core.lease import StackLease
from chaos_rec.core.rundir import RunContext
from chaos_rec.drill.config import DrillConfig, from_pytest
from chaos_rec.errors import ChaosRecError, ConfigError, DrillError
from chaos_rec.report.model import DrillRecord
from chaos_rec.slo import SLOResult

PLUGIN_NAME = "chaos-rec-drill-session"
Collector = Callable[..., pytest.Collector]

XDIST_MESSAGE = (
    "chaos-rec: drills inject faults into one shared stack and must run serially; "
    "they cannot run under pytest-xdist. Run them without -n (or with -n 0 / -p no:xdist), "
    "e.g. `pytest -m drill -p no:xdist`"
)


class _ReportBaseline:
    """A drill's record in the baseline report, compared figure by figure."""

    def __init__(self, base: DrillRecord, tolerance: float) -> None:
        self.base = base
        self.tolerance = tolerance

    def regressions(self, results: Sequence[SLOResult], recovery_s: float | None) -> list[str]:
        """Figures worse than the baseline's beyond the tolerance."""
        from chaos_rec.report.baseline import compare

        now = DrillRecord(
            name=self.base.name, nodeid=self.base.nodeid, title=self.base.title,
            kind=self.base.kind, slos=list(results), recovery_s=recovery_s,
        )  # fmt: skip
        return compare(now, self.base, self.tolerance)


class DrillSession:
    """State of one pytest run's drills; registered as a plugin by ``chaos_rec.plugin``."""

    def __init__(self, config: pytest.Config, cfg: DrillConfig, collector: Collector) -> None:
        self.config = config
        self.cfg = cfg
        self.collector = collector  # builds the pytest collector of one experiment file
        self.records: list[DrillRecord] = []
        self.notes: list[str] = []
        self._recovered = False
        self._lease = StackLease(cfg.state_dir, repair_running=False)
        self._baseline: dict[str, DrillRecord] | None = None

    @classmethod
    def from_config(cls, config: pytest.Config, collector: Collector) -> DrillSession:
        """Build the typed config (one clear usage error on bad input) and the session."""
        try:
            cfg = from_pytest(config)
        except ChaosRecError as exc:
            raise pytest.UsageError(f"chaos-rec: {exc}") from exc
        session = cls(config, cfg, collector)
        session._add_drill_args()
        return session

    def _add_drill_args(self) -> None:
        """Collect the drill paths too when pytest runs its testpaths (or --drill-path is given)."""
        explicit = bool(self.config.getoption("drill_paths", default=None))
        if not explicit and self.config.args_source != pytest.Config.ArgsSource.TESTPATHS:
            return
        here = Path(self.config.invocation_params.dir)
        current = [(here / a.split("::")[0]).resolve() for a in self.config.args]
        for path in self.cfg.paths:
            if not path.exists():
                if explicit:
                    raise pytest.UsageError(f"chaos-rec: --drill-path {path} does not exist")
                continue
            resolved = path.resolve()
            if any(resolved == c or c in resolved.parents for c in current):
                continue
            self.config.args.append(str(path))

    # -- collection ---------------------------------------------------------------

    def _is_drill_file(self, file_path: Path, parent: pytest.Collector) -> bool:
        if file_path.suffix != ".json":
            return False
        if parent.session.isinitpath(file_path):
            return True
        resolved = file_path.resolve()
        for path in self.cfg.paths:
            target = path.resolve()
            if resolved == target or resolved.parent == target:
                return True
        return False

    def pytest_collect_file(
        self, file_path: Path, parent: pytest.Collector
    ) -> pytest.Collector | None:
        """Collect ``experiments/*.json`` (the drill paths) as drills."""
        if not self._is_drill_file(file_path, parent):
            return None
        return self.collector(parent, path=file_path)

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Refuse to run drills on xdist workers."""
        if hasattr(config, "workerinput") and any(i.get_closest_marker("drill") for i in items):
            raise pytest.UsageError(XDIST_MESSAGE)

    def pytest_report_collectionfinish(
        self, config: pytest.Config, start_path: Path, items: list[pytest.Item]
    ) -> str | None:
        """One header line (target, seed, report dir, mode), only when drills were collected."""
        if not any(i.get_closest_marker("drill") for i in items):
            return None
        target = (
            "reference stack" if self.cfg.stack_file is None else f"deployment {self.cfg.stack}"
        )
        parts = [f"chaos-rec drills: {target}", f"seed {self.cfg.seed}"]
        if self.cfg.report_dir:
            parts.append(f"report {self.cfg.report_dir}")
        if self.cfg.baseline_dir:
            parts.append(f"baseline {self.cfg.baseline_dir} (tolerance {self.cfg.tolerance:.0%})")
        if self.cfg.dry:
            parts.append("DRY RUN (nothing injected)")
        return ", ".join(parts)

    def pytest_configure(self, config: pytest.Config) -> None:
        """Refuse xdist on the controller when drills are selected explicitly."""
        if getattr(config.option, "numprocesses", None) and "drill" in (
            config.option.markexpr or ""
        ):
            raise pytest.UsageError(XDIST_MESSAGE)

    # -- running ------------------------------------------------------------------

    def guard(self) -> DrillGuard:
        """The rollback guard for this session's target (recovers a crashed session once)."""
        guard = DrillGuard(self.cfg.state_dir, self.toxiproxy_url(), self.repairer())
        other = guard.other_session()
        if other is not None:
            raise DrillError(
                f"another drill session (pid {other.get('pid')}) is running drill "
                f"{other.get('drill')} on {self.cfg.state_dir}: drills run serially"
            )
        if not self._recovered:
            self._recovered = True
            self.notes += guard.recover()
        return guard

    def ensure_reference_stack(self) -> None:
        """Hold the reference stack for the whole session (stopped at its end if we started it).

        Without this each experiment's control would start and stop its own stack.
        A stack that was already running is used and left running.
        """
        if self.cfg.stack_file is None and not self._lease.held:
            self._lease.acquire()
            if self._lease.started:
                self.notes.append(f"started the reference stack in {self.cfg.state_dir}")

    def toxiproxy_url(self) -> str | None:
        """The fault proxy of a user's deployment file (the reference stack repairs itself),
        allowlisted: a reset reaches no host a fault could not."""
        if self.cfg.stack_file is None:
            return None
        from chaos_rec.core.target import read_deployment_file

        return read_deployment_file(self.cfg.stack_file).fault_proxy_url()

    def repairer(self) -> Repairer | None:
        """The guard's repair of a deployment file (with a links backend, also its leftovers);
        None: the guard's own."""
        if self.cfg.stack_file is None:
            return None
        from chaos_rec import backends
        from chaos_rec.core.target import read_deployment_file

        return backends.guard_repairer(read_deployment_file(self.cfg.stack_file))

    def lacking(self, capabilities: Iterable[str]) -> list[str]:
        """The ``capabilities`` the target lacks: what a deployment file's backends make possible,
        or what the running reference stack offers (all, Prometheus when it runs one, its own
        metric family only); a stack not started yet, in a dry run, counts as offering all."""
        from chaos_rec.backends.capabilities import offered
        from chaos_rec.core.capabilities import missing
        from chaos_rec.core.target import read_deployment_file, reference_deployment

        if self.cfg.stack_file is not None:
            dep = read_deployment_file(self.cfg.stack_file)
        elif self._lease.runtime.running(self.cfg.state_dir):
            try:
                dep = reference_deployment(self.cfg.state_dir)
            except ChaosRecError:  # a partial stack (no gateway): no load, no optional key to judge
                return []
        else:
            return []
        return missing(dict.fromkeys(capabilities, ""), offered(dep))

    def preflight(self, experiment: Mapping[str, Any]) -> list[str]:
        """Check the target for real (``--drill-dry``): what failed, one line each.

        A deployment file is always checked; the reference stack only when it is running (a dry
        run starts nothing).
        """
        from chaos_rec import backends
        from chaos_rec.core.preflight import named_targets, preflight
        from chaos_rec.core.target import read_deployment_file, reference_deployment

        try:
            if self.cfg.stack_file is not None:
                dep = read_deployment_file(self.cfg.stack_file)
            elif self._lease.runtime.running(self.cfg.state_dir):
                dep = reference_deployment(self.cfg.state_dir)
            else:
                return []
            links = backends.links(dep, 5.0) if dep.faults_links else None
            traffic = backends.traffic(dep, 5.0)
        except ChaosRecError as exc:
            return [str(exc)]
        try:
            return backends.check(dep) + preflight(
                dep, named_targets(experiment), links, traffic=traffic
            )
        finally:
            traffic.close()

    def new_run_dir(self, name: str) -> Path:
        """A fresh run dir for one drill under the state dir."""
        return RunContext.create(self.cfg.state_dir, name).run_dir

    def run_configuration(self, run_dir: Path) -> dict[str, Any]:
        """The configuration keys the plugin adds to every experiment."""
        conf: dict[str, Any] = {
            "chaos_rec_run_dir": str(run_dir),
            "chaos_rec_seed": self.cfg.seed,
            "chaos_rec_state_dir": str(self.cfg.state_dir),
        }
        if self.cfg.stack_file is not None:  # else the experiment's own target (default reference)
            conf["chaos_rec_target"] = self.cfg.stack
        if self.cfg.fail_fast:  # else the experiment's own (default off)
            conf["chaos_rec_fail_fast"] = True
        return conf

    def progress(self, item: pytest.Item, text: str) -> None:
        """Print a phase line with live figures (verbose mode only)."""
        if self.cfg.verbose < 1:
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
            reporter.ensure_newline()
            for line in text.splitlines():
                reporter.write_line(f"    [{item.name}] {line}")

    def add_record(
        self,
        record: DrillRecord,
        *,
        journal: dict[str, Any] | None = None,
        run_dir: Path | None = None,
    ) -> None:
        """Keep a drill's record and write its files when ``--drill-report`` is set."""
        self.records.append(record)
        if self.cfg.report_dir is not None and record.result != "dry":
            from chaos_rec.report.files import write_drill_files

            write_drill_files(self.cfg.report_dir, record, journal, run_dir)

    def baseline_for(self, name: str) -> Baseline | None:
        """The baseline report's figures of drill ``name`` (``--drill-baseline``), if any."""
        if self.cfg.baseline_dir is None:
            return None
        from chaos_rec.report.baseline import load_baseline

        if self._baseline is None:
            self._baseline = load_baseline(self.cfg.baseline_dir)
        base = self._baseline.get(name)
        return None if base is None else _ReportBaseline(base, self.cfg.tolerance)

    def record_properties(self, item: pytest.Item, record: DrillRecord) -> None:
        """Attach the SLO figures to the item (JUnit XML ``<properties>``)."""
        from chaos_rec.report.junit import properties

        item.user_properties.extend(properties(record))

    # -- reporting ----------------------------------------------------------------

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """One row per drill: result, SLOs observed vs budget, recovery time."""
        if not self.records and not self.notes:
            return
        from chaos_rec.report.terminal import summary_lines

        terminalreporter.section("chaos-rec drills")
        for line in self.notes:
            terminalreporter.write_line(line)
        for line in summary_lines(self.records):
            terminalreporter.write_line(line)
        if self.cfg.report_dir is not None and self.records:
            terminalreporter.write_line(f"report: {self.cfg.report_dir / 'report.html'}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the session's HTML report and summary.json; repair a drill cut short."""
        guard = (
            DrillGuard(self.cfg.state_dir, self.toxiproxy_url(), self.repairer())
            if self._recovered
            else DrillGuard(self.cfg.state_dir)
        )
        if guard.marker.is_file():
            try:
                data = json.loads(guard.marker.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            if isinstance(data, dict) and data.get("pid") == os.getpid():
                self.notes += [f"repaired after {data.get('drill')}: {x}" for x in guard.end()]
        if self.cfg.report_dir is not None and self.records:
            from chaos_rec.report.files import write_session_report

            write_session_report(self.cfg.report_dir, self.records)
        self._lease.release()


def drill_session(config: pytest.Config) -> DrillSession:
    """The registered drill session of this pytest run."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is None:  # pragma: no cover - registered in pytest_configure
        raise ConfigError("the chaos-rec drill session is not registered")
    return plugin  # type: ignore[no-any-return]
