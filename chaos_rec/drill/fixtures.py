"""Fixtures for drills written in Python: drill, drill_stack, fault_proxy, load."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from chaos_rec.core.lease import StackLease
from chaos_rec.core.target import Deployment, read_deployment_file, reference_deployment
from chaos_rec.drill.config import DrillConfig
from chaos_rec.drill.faults import FaultProxy
from chaos_rec.drill.python_drill import PythonDrill
from chaos_rec.drill.session import drill_session
from chaos_rec.errors import ChaosRecError, ConfigError
from chaos_rec.report.model import DrillRecord

REPORT_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()
DrillTarget = Deployment  # what ``drill_stack`` yields (the name Python drills know)


@pytest.fixture(scope="session")
def drill_config(pytestconfig: pytest.Config) -> DrillConfig:
    """The drill plugin's typed configuration."""
    return drill_session(pytestconfig).cfg


@pytest.fixture(scope="session")
def drill_stack(drill_config: DrillConfig) -> Iterator[Deployment]:
    """The target: the reference stack (started if needed, stopped if we started it) or --drill-stack FILE."""
    if drill_config.dry:
        pytest.skip("--drill-dry: Python drills inject faults, not run")
    if drill_config.stack_file is not None:
        yield read_deployment_file(drill_config.stack_file)
        return
    with StackLease(drill_config.state_dir, repair_running=False):
        yield reference_deployment(drill_config.state_dir)


@pytest.fixture
def drill(request: pytest.FixtureRequest, drill_config: DrillConfig) -> Iterator[PythonDrill]:
    """A Python drill's run: run dir, phase marks, live progress, ``assert_slo``; repaired after."""
    if drill_config.dry:
        pytest.skip("--drill-dry: Python drills inject faults, not run")
    session = drill_session(request.config)
    item = request.node
    record = DrillRecord(
        name=item.name,
        nodeid=item.nodeid,
        title=(item.obj.__doc__ or item.name).strip().splitlines()[0],
        kind="python",
        seed=drill_config.seed,
    )
    run_dir = session.new_run_dir(item.name)
    record.run_dir = str(run_dir)
    t0 = time.monotonic()
    guard = session.guard()
    guard.begin(item.name)
    run = PythonDrill(record, run_dir, drill_config.slo, lambda text: session.progress(item, text))
    try:
        yield run
    finally:
        try:
            repaired = guard.end()
        except ChaosRecError as exc:
            record.problems.append(f"rollback guarantee failed: {exc}")
            repaired = []
        if repaired:
            session.progress(item, "plugin repair: " + ", ".join(repaired))
        record.duration_s = round(time.monotonic() - t0, 3)
        reports = item.stash.get(REPORT_KEY, {})
        call = reports.get("call")
        if call is None:
            record.result = "interrupted"
        elif call.failed:
            record.result = "failed"
            if not record.problems and all(r.passed for r in record.slos):
                record.problems.append(
                    f"test failed: {call.longreprtext.strip().splitlines()[-1] if call.longreprtext.strip() else 'error'}"
                )
        else:
            record.result = "passed"
        session.add_record(record, run_dir=run_dir)
        session.record_properties(item, record)


@pytest.fixture
def fault_proxy(drill_stack: Deployment, drill: PythonDrill) -> Iterator[FaultProxy]:
    """Faults per link: ``with fault_proxy.toxic("feature-store", "latency", latency=200): ...``."""
    from chaos_rec import backends

    if not drill_stack.faults_links:
        raise ConfigError(
            "fault_proxy: the deployment file names no toxiproxy_url or links backend"
        )
    proxy = FaultProxy(backends.links(drill_stack, 5.0), drill)  # allowlisted
    try:
        yield proxy
    finally:
        proxy.undo_all()


@pytest.fixture
def load(drill_stack: Deployment, drill: PythonDrill, drill_config: DrillConfig) -> Iterator[Any]:
    """The Locust load runner (subprocess) writing the drill's timeline; stopped after the test."""
    from chaos_rec import backends

    traffic = backends.traffic(drill_stack, timeout_s=5.0)
    runner = traffic.start_load(
        drill.run_dir, rps=drill_config.load_rps, users=drill_config.load_users,
        seed=drill_config.seed, timeout_s=5.0, workers=drill_config.load_workers,
    )  # fmt: skip
    try:
        yield runner
    finally:
        runner.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report (for the ``drill`` fixture); our errors in drills are one line."""
    report = yield
    item.stash.setdefault(REPORT_KEY, {})[report.when] = report
    exc = call.excinfo.value if call.excinfo is not None else None
    if (
        report.failed
        and isinstance(exc, ChaosRecError)
        and "drill" in getattr(item, "fixturenames", ())
    ):
        report.longrepr = f"drill {item.name}: {type(exc).__name__}: {exc}"
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use the ``drill`` fixture are drills (marker ``drill``)."""
    for item in items:
        if (
            "drill" in getattr(item, "fixturenames", ())
            and item.get_closest_marker("drill") is None
        ):
            item.add_marker("drill")
