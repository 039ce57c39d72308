"""The chaos-rec Chaos Toolkit control: stack, load, phases, safeguard and the SLO guard.

Add it once to an experiment::

    "controls": [{"name": "chaos-rec",
                  "provider": {"type": "python", "module": "chaos_rec.controls"}}]

Before the experiment it brings the reference stack up (only if it is not
running, and then takes it down afterwards), opens the run dir, starts Locust
for the whole run, waits a warm-up, marks ``steady`` and arms the safeguard.
After it, it undoes any fault still in effect, stops the load, judges the run
and writes ``slo_verdict.json``. Chaos Toolkit's own traps are closed here:
a steady state already broken before the method, a failed action or probe, a
deviated after-state or any SLO miss marks the journal ``failed`` and
``deviated`` so that ``chaos run`` exits 1.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos_rec.errors import ChaosRecError, StackNotRunning
from chaos_rec.extconfig import ExtConfig, ext_config, set_active_run
from chaos_rec.load import LoadRunner, availability
from chaos_rec.runctx import RunContext
from chaos_rec.slo import SLOSpec, Verdict, evaluate

__all__ = [
    "after_experiment_control",
    "before_experiment_control",
    "judge_journal",
]

logger = logging.getLogger("chaostoolkit")
Cfg = Mapping[str, Any] | None


@dataclass
class _Run:
    cfg: ExtConfig
    ctx: RunContext
    spec: SLOSpec | None
    started_stack: bool = False
    load: LoadRunner | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    tripped: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None


_STATE: list[_Run] = []


def _interrupt(message: str) -> Exception:
    from chaoslib.exceptions import InterruptExecution

    exc: Exception = InterruptExecution(f"chaos-rec: {message}")
    return exc


def _spec_for(experiment: Mapping[str, Any]) -> SLOSpec | None:
    spec = SLOSpec.from_experiment(experiment)
    if spec is None and Path("pyproject.toml").is_file():
        spec = SLOSpec.from_pyproject(Path("pyproject.toml"))
    return spec


def _ensure_stack(cfg: ExtConfig) -> bool:
    """Bring the reference stack up unless it runs; True when we started it."""
    if cfg.target != "reference":
        return False
    from chaos_rec import stack

    try:
        stack.load_state(cfg.state_dir)
    except StackNotRunning:
        pass
    else:
        fixed = stack.repair(cfg.state_dir)  # faults left behind by a crashed earlier run
        if fixed:
            logger.warning(f"chaos-rec: undid leftovers of an earlier run: {'; '.join(fixed)}")
        return False
    overrides: dict[str, Any] = {}
    if cfg.state_dir is not None:
        overrides["state_dir"] = cfg.state_dir
    logger.info("chaos-rec: starting the reference stack")
    stack.up(stack.StackConfig.load(cfg.stack_config, **overrides))
    return True


def _safeguard(run: _Run) -> None:
    floor = run.cfg.safeguard_availability
    if floor is None:
        return
    while not run.stop.wait(1.0):
        rows = run.ctx.window(run.cfg.safeguard_s)
        if len(rows) < run.cfg.safeguard_s - 1:
            continue
        value = availability(rows)
        if value is not None and value < floor:
            reason = (
                f"safeguard: availability {value:.3f} < floor {floor:g} "
                f"for {run.cfg.safeguard_s:g}s; aborting and rolling back"
            )
            run.tripped.append(reason)
            run.ctx.write_json("safeguard.json", {"t": time.time(), "reason": reason})
            logger.error(f"chaos-rec: {reason}")
            handler = signal.getsignal(signal.SIGUSR1)
            if callable(handler):  # Chaos Toolkit's runner handles it: interrupt gracefully
                os.kill(os.getpid(), signal.SIGUSR1)
            return


def before_experiment_control(
    context: Mapping[str, Any],
    configuration: dict[str, Any] | None = None,
    secrets: Cfg = None,
    **kwargs: Any,
) -> None:
    """Stack up if needed, open the run dir, start the load, mark steady, arm the safeguard."""
    try:
        cfg = ext_config(configuration, secrets)
        spec = _spec_for(context)
        started = _ensure_stack(cfg)
        ctx = cfg.run_context(create=True)
    except ChaosRecError as exc:
        raise _interrupt(str(exc)) from exc
    run = _Run(cfg, ctx, spec, started)
    _STATE[:] = [run]
    set_active_run(ctx)
    if configuration is not None:
        configuration["chaos_rec_run_dir"] = str(ctx.run_dir)
    if spec is not None:
        ctx.write_json("slo_spec.json", spec.to_dict())
    logger.info(f"chaos-rec: run dir {ctx.run_dir}")
    try:
        if cfg.load:
            from chaos_rec.targets import load_deployment

            dep = load_deployment(cfg)
            holdout = dep.holdout if dep.holdout and dep.holdout.is_file() else None
            run.load = LoadRunner(
                dep.gateway_url,
                ctx.run_dir,
                rps=cfg.load_rps,
                users=cfg.load_users,
                seed=cfg.seed,
                holdout=holdout,
                timeout_s=cfg.timeout_s,
            ).start()
            time.sleep(cfg.warmup_s)
        ctx.mark("steady", "chaos_rec.controls")
        if spec is not None and spec.min_quality_ratio is not None:
            from chaos_rec.probes import quality_baseline

            quality_baseline(configuration=configuration, secrets=secrets)
    except ChaosRecError as exc:
        _finish(run, configuration, secrets)
        raise _interrupt(str(exc)) from exc
    if run.load is not None:
        run.thread = threading.Thread(
            target=_safeguard, args=(run,), daemon=True, name="chaos-rec-safeguard"
        )
        run.thread.start()


def _finish(run: _Run, configuration: Cfg, secrets: Cfg) -> list[str]:
    """Undo faults, stop load and safeguard, take the stack down if we started it."""
    problems: list[str] = []
    run.stop.set()
    from chaos_rec.actions import rollback_all

    try:
        undone = rollback_all(configuration=configuration, secrets=secrets)
        if undone:
            logger.info(f"chaos-rec: rolled back: {'; '.join(undone)}")
    except ChaosRecError as exc:
        problems.append(f"rollback failed: {exc}")
    if run.load is not None:
        with contextlib.suppress(ChaosRecError):
            run.load.stop()
    return problems


def _method_tolerances(journal: Mapping[str, Any]) -> list[str]:
    """Chaos Toolkit never judges probes in the method: judge those that declare a tolerance."""
    from chaoslib.hypothesis import within_tolerance

    out: list[str] = []
    for entry in journal.get("run") or []:
        act = entry.get("activity") or {}
        if (
            act.get("type") != "probe"
            or "tolerance" not in act
            or entry.get("status") != "succeeded"
        ):
            continue
        try:
            met = bool(within_tolerance(act["tolerance"], entry.get("output")))
        except Exception as exc:  # chaoslib raises its own types for bad tolerances
            out.append(
                f"probe {act.get('name', '?')} in the method: tolerance not checkable: {exc}"
            )
            continue
        if not met:
            value = json.dumps(entry.get("output"), default=str)[:120]
            out.append(
                f"probe {act.get('name', '?')} in the method missed its tolerance "
                f"{json.dumps(act['tolerance'], default=str)}: got {value}"
            )
    return out


def judge_journal(journal: Mapping[str, Any], verdict: Verdict | None) -> list[str]:
    """Every reason the run must fail: broken steady state, failed activity, deviation, SLO miss."""
    problems: list[str] = []
    before = (journal.get("steady_states") or {}).get("before")
    if before is not None and not before.get("steady_state_met", True):
        bad = [
            p["activity"].get("name", "?")
            for p in before.get("probes", [])
            if not p.get("tolerance_met", True)
        ]
        problems.append(
            f"steady state was not met before the method (probe {', '.join(bad) or '?'}); nothing was tested"
        )
    for entry in journal.get("run") or []:
        if entry.get("status") == "failed":
            act = entry.get("activity", {})
            first = str(entry.get("exception", [""])[-1] if entry.get("exception") else "").strip()
            problems.append(
                f"{act.get('type', 'activity')} {act.get('name', '?')} failed: {first.splitlines()[0] if first else '?'}"
            )
    problems.extend(_method_tolerances(journal))
    for entry in journal.get("rollbacks") or []:
        if entry.get("status") == "failed":
            problems.append(f"rollback {entry.get('activity', {}).get('name', '?')} failed")
    after = (journal.get("steady_states") or {}).get("after")
    if after is not None and not after.get("steady_state_met", True):
        problems.append("steady state deviated after the method")
    if verdict is not None:
        problems.extend(verdict.lines())
    return problems


def after_experiment_control(
    context: Mapping[str, Any],
    state: dict[str, Any],
    configuration: Cfg = None,
    secrets: Cfg = None,
    **kwargs: Any,
) -> None:
    """Roll back, stop the load, judge the run (SLO verdict, CTK traps) and mark the journal."""
    if not _STATE:
        return
    run = _STATE.pop()
    problems = _finish(run, configuration, secrets)
    try:
        _judge(run, state, problems, configuration, secrets)
    except Exception as exc:  # a crash here must still fail the run, never pass it
        state["status"] = "failed"
        state["deviated"] = True
        logger.error(f"chaos-rec: the run could not be judged: {exc!r}")
    set_active_run(None)
    if run.started_stack:
        from chaos_rec import stack

        try:
            stack.down(run.cfg.state_dir)
        except ChaosRecError as exc:
            logger.error(f"chaos-rec: stack down failed: {exc}")


def _judge(
    run: _Run, state: dict[str, Any], problems: list[str], configuration: Cfg, secrets: Cfg
) -> None:
    problems += run.tripped
    verdict: Verdict | None = None
    try:
        quality = run.ctx.read_json("quality.json")
        if (
            run.spec is not None
            and run.spec.min_quality_ratio is not None
            and quality
            and quality.get("baseline")
            and not quality.get("measurements")
        ):
            from chaos_rec.probes import quality_ratio

            quality_ratio(configuration=configuration, secrets=secrets)
            quality = run.ctx.read_json("quality.json")
        if run.spec is not None:
            verdict = evaluate(run.spec, run.ctx.timeline(), run.ctx.phases(), quality)
    except ChaosRecError as exc:
        problems.append(f"SLO evaluation failed: {exc}")
    problems = judge_journal(state, verdict) + problems
    out = {
        "passed": not problems,
        "problems": problems,
        "run_dir": str(run.ctx.run_dir),
        "slo": verdict.to_dict() if verdict else None,
    }
    run.ctx.write_json("slo_verdict.json", out)
    state["chaos_rec"] = out
    if problems:
        if state.get("status") == "completed":  # keep "interrupted"/"aborted" when it was
            state["status"] = "failed"
        state["deviated"] = True
        for line in problems:
            logger.error(f"chaos-rec: {line}")
    elif verdict is not None:
        logger.info(f"chaos-rec: all SLOs met\n{verdict.table()}")
