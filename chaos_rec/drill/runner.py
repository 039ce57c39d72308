"""Run one experiment through chaostoolkit-lib on the main thread, with live progress."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from chaos_rec.core.rundir import RunContext
from chaos_rec.errors import ConfigError, DrillError, is_ctrl_c

Progress = Callable[[str], None]


def live_figures(run_dir: Path) -> str:
    """The latest load figures of a run dir as ``p99 … avail … fallback …`` (or '')."""
    row = RunContext(run_dir).last_row()
    return format_figures(row) if row is not None else ""


def format_figures(row: Mapping[str, Any]) -> str:
    """One timeline row as ``p99 123ms avail 99.5% fallback 3.0%``."""
    requests = int(row.get("requests", 0) or 0)
    failures = int(row.get("failures", 0) or 0)
    tiers = row.get("tiers") or {}
    served = sum(int(v) for v in tiers.values()) if isinstance(tiers, Mapping) else 0
    fallback = served - int(tiers.get("none", 0)) if served else 0
    avail = f"{100.0 * (requests - failures) / requests:.1f}%" if requests else "n/a"
    fb = f"{100.0 * fallback / served:.1f}%" if served else "n/a"
    p99 = row.get("p99_ms")
    p99_text = "n/a" if p99 is None else f"{float(p99):.0f}ms"
    return f"p99 {p99_text} avail {avail} fallback {fb}"


@dataclass
class RunOutcome:
    """What chaoslib returned, and whether the run was cut short by a signal."""

    journal: dict[str, Any]
    signalled: bool = False
    events: list[str] = field(default_factory=list)


def _handler_class() -> type:
    from chaoslib.run import RunEventHandler

    class _Events(RunEventHandler):  # type: ignore[misc]
        """Forward chaoslib's run events to a progress callback."""

        def __init__(self, progress: Progress, run_dir: Path) -> None:
            self.progress = progress
            self.run_dir = run_dir
            self.signalled = False
            self.t0 = time.monotonic()

        def _say(self, text: str) -> None:
            figures = live_figures(self.run_dir)
            stamp = f"{time.monotonic() - self.t0:6.1f}s"
            self.progress(f"{stamp} {text}" + (f"  [{figures}]" if figures else ""))

        def start_hypothesis_before(self, experiment: Any) -> None:
            self._say("steady state (before)")

        def hypothesis_before_completed(self, experiment: Any, state: Any, journal: Any) -> None:
            met = bool(state and state.get("steady_state_met"))
            self._say(f"steady state before: {'met' if met else 'NOT met'}")

        def start_method(self, experiment: Any) -> None:
            self._say("method")

        def start_activity(self, activity: Any) -> None:
            self._say(f"  {activity.get('type', 'activity')} {activity.get('name', '?')} ...")

        def activity_completed(self, activity: Any, run: Any) -> None:
            status = (run or {}).get("status", "?") if isinstance(run, dict) else "?"
            self._say(f"  {activity.get('type', 'activity')} {activity.get('name', '?')}: {status}")

        def start_hypothesis_after(self, experiment: Any) -> None:
            self._say("steady state (after)")

        def hypothesis_after_completed(self, experiment: Any, state: Any, journal: Any) -> None:
            met = bool(state and state.get("steady_state_met"))
            self._say(f"steady state after: {'met' if met else 'DEVIATED'}")

        def start_rollbacks(self, experiment: Any) -> None:
            self._say("rollbacks")

        def signal_exit(self) -> None:
            self.signalled = True

        def finish(self, journal: Any) -> None:
            self._say(f"finished: {journal.get('status')}")

    return _Events


def ctk_settings(path: Path | None) -> dict[str, Any]:
    """The Chaos Toolkit settings ``chaos run`` would use (``path``, else its default file)."""
    from chaoslib.settings import CHAOSTOOLKIT_CONFIG_PATH, load_settings

    if path is not None and not path.is_file():
        raise ConfigError(f"Chaos Toolkit settings file not found: {path}")
    if path is not None:  # chaoslib logs a YAML error and goes on without the file's settings
        import yaml

        try:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError) as exc:
            mark = getattr(exc, "problem_mark", None)
            why = getattr(exc, "problem", None) or str(exc).strip().split("\n")[0]
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(
                f"Chaos Toolkit settings file {path} is not valid YAML: {why}{where}"
            ) from exc
    settings = load_settings(str(path or CHAOSTOOLKIT_CONFIG_PATH))
    if settings is not None and not isinstance(settings, dict):
        raise ConfigError(f"Chaos Toolkit settings file {path} must hold a mapping")
    return dict(settings or {})


def _notify(settings: dict[str, Any], event: str, payload: Any) -> None:
    from chaoslib.notification import RunFlowEvent, notify

    notify(settings, getattr(RunFlowEvent, event), payload)


def run_experiment(
    experiment: dict[str, Any],
    run_dir: Path,
    progress: Progress,
    rollback_strategy: str = "always",
    settings_path: Path | None = None,
) -> RunOutcome:
    """Run the experiment with chaoslib (main thread only) as ``chaos run`` does: its settings
    file's global controls and notifications; rollbacks always play by default. A Ctrl-C at
    any moment of it surfaces as ``KeyboardInterrupt``, never as the error it was wrapped in."""
    try:
        return _run(experiment, run_dir, progress, rollback_strategy, settings_path)
    except Exception as exc:  # a KeyboardInterrupt itself passes through as it is
        if is_ctrl_c(exc):
            raise KeyboardInterrupt from exc
        raise


def _run(
    experiment: dict[str, Any],
    run_dir: Path,
    progress: Progress,
    rollback_strategy: str,
    settings_path: Path | None,
) -> RunOutcome:
    if threading.current_thread() is not threading.main_thread():
        raise DrillError("drills must run on the main thread (chaoslib installs signal handlers)")
    from chaoslib.control import load_global_controls
    from chaoslib.experiment import run_experiment as ctk_run

    settings = ctk_settings(settings_path)
    runtime = experiment.get("runtime") or {}
    strategy = (runtime.get("rollbacks") or {}).get("strategy", rollback_strategy)
    settings.setdefault("runtime", {}).setdefault("rollbacks", {})["strategy"] = strategy
    load_global_controls(settings)
    _notify(settings, "RunStarted", experiment)
    handler = _handler_class()(progress, run_dir)
    ctrl_c: list[int] = []

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        ctrl_c.append(signum)
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        journal = ctk_run(experiment, settings=settings, event_handlers=[handler])
    finally:
        signal.signal(signal.SIGINT, previous)
    if not isinstance(journal, dict):
        raise DrillError("chaoslib returned no journal")
    _notify(
        settings, "RunCompleted" if journal.get("status") == "completed" else "RunFailed", journal
    )
    if journal.get("deviated"):
        _notify(settings, "RunDeviated", journal)
    # chaoslib swallows Ctrl-C (and SIGUSR1/2 of a safeguard); only Ctrl-C stops the session.
    return RunOutcome(journal=journal, signalled=bool(ctrl_c) and handler.signalled)
