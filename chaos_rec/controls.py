"""The chaos-rec Chaos Toolkit control: Chaos Toolkit's hooks translated into the drill core.

Add it once to an experiment::

    "controls": [{"name": "chaos-rec",
                  "provider": {"type": "python", "module": "chaos_rec.controls"}}]

Before the experiment it holds the reference stack (started only if it is not running, and
then taken down afterwards), opens the run dir and begins the core's run (load for the whole
run, warm-up, ``steady``, quality baseline, safeguard). After it, the core undoes every fault,
stops the load and judges the run (``chaos_rec.core.judge``); the judgement goes into the
journal (``chaos_rec``) and ``slo_verdict.json``, and any reason to fail marks the journal
``failed`` and ``deviated`` so that ``chaos run`` exits 1.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaos_rec.core.judge import journal_problems
from chaos_rec.core.lease import StackLease
from chaos_rec.core.run import ACTIVE, DrillRun, RunPlan
from chaos_rec.core.target import Deployment
from chaos_rec.errors import CapabilityError, ChaosRecError
from chaos_rec.extconfig import ExtConfig, ext_config
from chaos_rec.settings import default

__all__ = [
    "after_experiment_control",
    "before_experiment_control",
    "judge_journal",
]

logger = logging.getLogger("chaostoolkit")
Cfg = Mapping[str, Any] | None


def _interrupt(message: str) -> Exception:
    from chaoslib.exceptions import InterruptExecution

    exc: Exception = InterruptExecution(f"chaos-rec: {message}")
    return exc


def _spec_for(experiment: Mapping[str, Any], lacking: list[str]) -> dict[str, Any] | None:
    """The SLO spec to judge, less the keys whose (optional) capability the target lacks."""
    from chaos_rec.core.capabilities import unjudged
    from chaos_rec.slo import SLOSpec

    spec = SLOSpec.from_experiment(experiment)
    if spec is None and Path("pyproject.toml").is_file():
        spec = SLOSpec.from_pyproject(Path("pyproject.toml"))
    kept, notes = unjudged(spec.to_dict() if spec is not None else None, lacking)
    for note in notes:
        logger.info(f"chaos-rec: {note}")
    return kept


def _lease(cfg: ExtConfig) -> StackLease | None:
    if cfg.target != "reference":
        return None
    state_dir = cfg.state_dir or Path(default("state_dir")).absolute()
    say = logger.info
    return StackLease(state_dir, cfg.stack_config, say=lambda text: say(f"chaos-rec: {text}"))


def _open(
    context: Mapping[str, Any], configuration: dict[str, Any] | None, secrets: Cfg
) -> DrillRun:
    from chaos_rec import backends
    from chaos_rec.targets import load_deployment

    cfg = ext_config(configuration, secrets)
    lease = _lease(cfg)
    if lease is not None:
        lease.acquire()
    try:
        full = RunPlan(spec=_spec_for(context, []))
        needed = cfg.load or full.judges_quality or full.judges_server
        dep = load_deployment(cfg, secrets) if needed else None  # the reference stack is up
        lacking = _lacking_optional(context, dep) if dep is not None else []
        plan = RunPlan(
            spec=_spec_for(context, lacking), load=cfg.load, rps=cfg.load_rps,
            users=cfg.load_users, workers=cfg.load_workers, seed=cfg.seed, timeout_s=cfg.timeout_s,
            warmup_s=cfg.warmup_s, safeguard_availability=cfg.safeguard_availability,
            safeguard_s=cfg.safeguard_s, fail_fast=cfg.fail_fast,
        )  # fmt: skip
        # the target allowlist refuses here, before the run dir, the load or any fault
        traffic = backends.traffic(dep, cfg.timeout_s) if dep is not None else None
        server = dep.server_metrics() if dep is not None else None
        ctx = cfg.run_context(create=True, name=str(context.get("title") or "run"))
    except BaseException:
        if lease is not None:
            lease.release()
        raise
    return DrillRun(
        ctx, plan, traffic=traffic, holdout=dep.holdout if dep is not None else None,
        state_dir=cfg.state_dir, reference=cfg.target == "reference", lease=lease, server=server,
    )  # fmt: skip


def _lacking_optional(experiment: Mapping[str, Any], dep: Deployment) -> list[str]:
    """The experiment's optional capabilities the target lacks (its SLO keys are noted, not judged)."""
    from chaos_rec.backends.capabilities import offered
    from chaos_rec.core.capabilities import optional_capabilities

    have = offered(dep)
    return [cap for cap in optional_capabilities(experiment) if cap not in have]


def _require_capabilities(
    experiment: Mapping[str, Any], configuration: dict[str, Any] | None, secrets: Cfg
) -> None:
    """Stop before the stack, the load and any fault when the target lacks what the drill needs."""
    from chaos_rec.backends.capabilities import offered
    from chaos_rec.core.capabilities import describe, experiment_needs, missing
    from chaos_rec.targets import load_deployment

    cfg = ext_config(configuration, secrets)
    needs = experiment_needs(experiment)  # checks extensions[chaos_rec] whatever the target
    if cfg.target == "reference":
        return  # the reference stack offers every capability
    dep = load_deployment(cfg)
    lacking = missing(needs, offered(dep))
    if lacking:
        what = "; ".join(describe(cap, needs[cap]) for cap in lacking)
        raise CapabilityError(f"target {dep.source} lacks {what}: stopped before any fault")


def _dry(context: Mapping[str, Any]) -> bool:
    """True when ``chaos run --dry`` skips the actions: no fault, so no stack and no load."""
    dry = context.get("dry")
    return str(getattr(dry, "value", dry) or "") in ("actions", "activities")


def before_experiment_control(
    context: Mapping[str, Any],
    configuration: dict[str, Any] | None = None,
    secrets: Cfg = None,
    **kwargs: Any,
) -> None:
    """Hold the stack, open the run dir, start the load, mark steady, arm the safeguard."""
    if _dry(context):
        logger.info("chaos-rec: dry run (no action runs): no stack, no load, no verdict")
        return
    try:
        _require_capabilities(context, configuration, secrets)
        run = _open(context, configuration, secrets)
    except ChaosRecError as exc:
        raise _interrupt(str(exc)) from exc
    if configuration is not None:
        configuration["chaos_rec_run_dir"] = str(run.ctx.run_dir)
    logger.info(f"chaos-rec: run dir {run.ctx.run_dir}")
    try:
        run.begin()  # the run is ACTIVE from here until after_experiment_control
    except ChaosRecError as exc:
        run.abort()
        raise _interrupt(str(exc)) from exc


def judge_journal(journal: Mapping[str, Any], verdict: Any = None) -> list[str]:
    """Every reason a journal fails (the core judge's rules), then the SLO misses of ``verdict``."""
    return journal_problems(journal, None, None) + (verdict.lines() if verdict is not None else [])


def after_experiment_control(
    context: Mapping[str, Any],
    state: dict[str, Any],
    configuration: Cfg = None,
    secrets: Cfg = None,
    **kwargs: Any,
) -> None:
    """Undo faults, stop the load, judge the run and mark the journal."""
    run = ACTIVE.run
    if run is None:
        return
    try:
        judgement = run.finish(state, configuration=configuration, secrets=secrets)
    except Exception as exc:  # a crash here must still fail the run, never pass it
        state["status"] = "failed"
        state["deviated"] = True
        logger.error(f"chaos-rec: the run could not be judged: {exc!r}")
        ACTIVE.close()
        return
    state["chaos_rec"] = judgement.to_dict()
    if judgement.passed:
        if judgement.verdict is not None:
            logger.info(f"chaos-rec: all SLOs met\n{judgement.verdict.table()}")
        return
    if state.get("status") == "completed":  # keep "interrupted"/"aborted" when it was
        state["status"] = "failed"
    state["deviated"] = True
    for line in judgement.problems:
        logger.error(f"chaos-rec: {line}")
