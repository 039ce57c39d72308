"""The one judge of a drill's run: Chaos Toolkit's traps, the SLO verdict, one result.

Chaos Toolkit calls a run ``completed`` when its steady state was broken before the method (no
fault was injected), when a probe of the method missed its tolerance, or when a rollback
failed. Every such reason, and every SLO miss, fails the drill here. The Chaos Toolkit control
judges a run with :func:`judge_run` and stores the :class:`Judgement` in the journal and the run
dir; the pytest items read it back (:meth:`Judgement.from_dict`) and judge themselves, with the
same function, only a run that no control judged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chaos_rec.core.rundir import RunContext
from chaos_rec.core.safeguard import fail_fast_until
from chaos_rec.errors import ChaosRecError, ConfigError, DrillError
from chaos_rec.slo import SLOResult, SLOSpec, Verdict, evaluate
from chaos_rec.slo.judge import run_end
from chaos_rec.slo.promql_judge import server_series
from chaos_rec.slo.server import ServerMetrics

__all__ = ["Baseline", "Judgement", "journal_problems", "judge_run", "verdict_from_dict"]

Cfg = Mapping[str, Any] | None


class Baseline(Protocol):
    """A previous run's figures: which of this run's figures got worse beyond a tolerance."""

    def regressions(self, results: Sequence[SLOResult], recovery_s: float | None) -> list[str]:
        """One line per figure that regressed."""
        ...


def _first_line(text: object) -> str:
    """The message of an activity's exception (chaoslib stores formatted traceback lines)."""
    if isinstance(text, list | tuple):
        text = "".join(str(t) for t in text)
    lines = [ln.strip() for ln in str(text or "").strip().splitlines() if ln.strip()]
    if not lines:
        return "no message"
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    for prefix in ("chaoslib.exceptions.ActivityFailed: ", "ActivityFailed: "):
        line = line.removeprefix(prefix)
    return re.sub(r"^(?:[a-z_][\w]*\.)+(?=[A-Z]\w*: )", "", line)  # module path of the class


def _name(entry: Mapping[str, Any]) -> str:
    return str((entry.get("activity") or {}).get("name", "?"))


def _failed_probe(state: Mapping[str, Any]) -> str:
    for probe in state.get("probes", []) or []:
        if probe.get("status", "succeeded") != "succeeded":
            return f"probe {_name(probe)} failed: {_first_line(probe.get('exception'))}"
        if probe.get("tolerance_met") is False:
            tol = (probe.get("activity") or {}).get("tolerance")
            return (
                f"probe {_name(probe)} returned {json.dumps(probe.get('output'), default=str)[:200]}, "
                f"outside tolerance {json.dumps(tol, default=str)}"
            )
    return "a probe was not within tolerance"


def _within(tolerance: Any, value: Any, configuration: Cfg, secrets: Cfg) -> bool:
    """chaoslib's own tolerance check; a tolerance it cannot apply to the value is a miss."""
    from chaoslib.hypothesis import within_tolerance

    try:
        return bool(
            within_tolerance(tolerance, value, dict(configuration or {}), dict(secrets or {}))
        )
    except Exception:  # chaoslib raises its own types (and plain ones) for unusable tolerances
        return False


def journal_problems(journal: Mapping[str, Any], configuration: Cfg, secrets: Cfg) -> list[str]:
    """Everything wrong with a run that Chaos Toolkit may still call ``completed``."""
    problems: list[str] = []
    status = journal.get("status")
    experiment = journal.get("experiment") or {}
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    states = journal.get("steady_states") or {}
    before = states.get("before")
    tested = bool(hypothesis.get("probes")) or not experiment
    if tested and before is not None and not before.get("steady_state_met", False):
        problems.append(
            "steady state was NOT met before the method, so no fault was injected "
            f"(Chaos Toolkit still says '{status}'): {_failed_probe(before)}"
        )
    for entry in journal.get("run", []) or []:
        activity = entry.get("activity") or {}
        kind = activity.get("type", "activity")
        if entry.get("status") == "failed":
            problems.append(f"{kind} {_name(entry)} failed: {_first_line(entry.get('exception'))}")
        elif (
            kind == "probe"
            and "tolerance" in activity
            and entry.get("status") == "succeeded"
            and not _within(activity["tolerance"], entry.get("output"), configuration, secrets)
        ):
            problems.append(
                f"method probe {_name(entry)} returned "
                f"{json.dumps(entry.get('output'), default=str)[:200]}, outside tolerance "
                f"{json.dumps(activity['tolerance'], default=str)} (Chaos Toolkit does not judge it)"
            )
    for entry in journal.get("rollbacks", []) or []:
        if entry.get("status") == "failed":
            problems.append(
                f"rollback {_name(entry)} failed: {_first_line(entry.get('exception'))}"
            )
    after = states.get("after")
    if (after is not None and not after.get("steady_state_met", True)) or (
        journal.get("deviated") and after is None
    ):
        problems.append(f"steady state deviated after the method: {_failed_probe(after or {})}")
    for during in states.get("during", []) or []:
        if isinstance(during, Mapping) and not during.get("steady_state_met", True):
            problems.append(f"steady state deviated during the method: {_failed_probe(during)}")
            break
    if status == "interrupted":
        problems.append("the run was interrupted (signal, safeguard or Ctrl-C)")
    elif status == "aborted":
        problems.append("the run was aborted")
    elif status == "failed" and not problems:
        problems.append("Chaos Toolkit marked the run failed")
    return problems


def verdict_from_dict(data: Mapping[str, Any]) -> Verdict:
    """A verdict read back from its JSON form (``Verdict.to_dict``)."""
    results = data.get("results")
    if not isinstance(results, Sequence) or isinstance(results, str):
        raise DrillError("an SLO verdict needs a 'results' list")
    rows = [SLOResult.from_dict(r) for r in results if isinstance(r, Mapping)]
    recovery = data.get("recovery_s")
    passed = bool(data.get("passed", all(r.passed for r in rows)))
    return Verdict(passed, rows, None if recovery is None else float(recovery))


@dataclass
class Judgement:
    """The one result of a drill's run, rendered by the terminal, HTML, JUnit and the journal."""

    checks: list[str] = field(default_factory=list)  # every reason to fail but an SLO miss
    verdict: Verdict | None = None
    run_dir: str | None = None
    regressions: list[str] = field(default_factory=list)  # figures worse than the baseline

    @property
    def passed(self) -> bool:
        """True when nothing failed, every SLO was met and no figure regressed."""
        ok = not self.checks and not self.regressions
        return ok and (self.verdict is None or self.verdict.passed)

    @property
    def problems(self) -> list[str]:
        """Every reason the run fails, SLO misses last (what ``chaos run`` logs)."""
        misses = self.verdict.lines() if self.verdict is not None else []
        if self.verdict is not None and not self.verdict.passed and not misses:
            misses = ["SLO verdict: failed"]
        return [*self.checks, *misses, *(f"regression: {r}" for r in self.regressions)]

    @property
    def recovery_s(self) -> float | None:
        """Seconds to recover after the fault, when measured."""
        return self.verdict.recovery_s if self.verdict is not None else None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the journal's ``chaos_rec`` entry and ``slo_verdict.json``."""
        return {
            "passed": self.passed,
            "problems": self.problems,
            "checks": list(self.checks),
            "regressions": list(self.regressions),
            "run_dir": self.run_dir,
            "slo": self.verdict.to_dict() if self.verdict is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Judgement:
        """Read a judgement back; a bare verdict (``{"results": …}``) is a judgement too."""
        if "results" in data:
            return cls([], verdict_from_dict(data))
        if not isinstance(data.get("checks"), list):
            raise DrillError("a judgement needs a 'checks' list")
        slo = data.get("slo")
        verdict = verdict_from_dict(slo) if isinstance(slo, Mapping) else None
        run_dir = data.get("run_dir")
        regressions = [str(r) for r in data.get("regressions") or []]
        checks = [str(c) for c in data["checks"]]
        return cls(checks, verdict, str(run_dir) if run_dir else None, regressions)


def _verdict(
    ctx: RunContext, spec: Mapping[str, Any] | None, server: ServerMetrics | None = None
) -> Verdict | None:
    """The SLO verdict of a run: evaluated over its timeline (and server metrics) if specced.

    With server-side budgets and a server, their queries over the whole run are recorded for
    the report (``server_series.json``).
    """
    if spec is None:
        return None
    timeline = ctx.timeline()
    if not timeline:
        raise DrillError(
            "an SLO spec is set but the run left no load timeline (timeline.jsonl): "
            "enable the chaos_rec.controls control (it runs the load) or the `load` fixture"
        )
    try:
        parsed = SLOSpec.parse(spec)
        phases = ctx.phases()
        until = fail_fast_until(ctx)
        verdict = evaluate(parsed, timeline, phases, ctx.quality(), server, until=until)
        if parsed.promql and server is not None:
            start = min(float(r["t"]) for r in timeline)
            ctx.write_server_series(server_series(parsed, start, run_end(timeline, phases), server))
        return verdict
    except ConfigError:
        raise  # a bad spec is the user's input: one line, not a drill verdict
    except ChaosRecError as exc:
        raise DrillError(f"SLO evaluation failed: {exc}") from exc


def judge_run(
    ctx: RunContext,
    spec: Mapping[str, Any] | None,
    journal: Mapping[str, Any] | None = None,
    *,
    configuration: Cfg = None,
    secrets: Cfg = None,
    extra: Sequence[str] = (),
    stored: bool = True,
    baseline: Baseline | None = None,
    server: ServerMetrics | None = None,
) -> Judgement:
    """Judge a run: its journal's traps (if it has one), ``extra`` reasons and its SLOs.

    A judgement the control already stored (journal ``chaos_rec``, else ``slo_verdict.json``)
    is taken as it is (unless ``stored`` is false), so a run is judged once whichever door it
    came through. With a ``baseline``, figures that regressed fail the run too; ``server``
    answers the spec's server-side (PromQL) budgets.
    """
    judgement = _judge(ctx, spec, journal, configuration, secrets, extra, stored, server)
    if baseline is not None and judgement.verdict is not None:
        judgement.regressions = baseline.regressions(
            judgement.verdict.results, judgement.verdict.recovery_s
        )
    return judgement


def _judge(
    ctx: RunContext,
    spec: Mapping[str, Any] | None,
    journal: Mapping[str, Any] | None,
    configuration: Cfg,
    secrets: Cfg,
    extra: Sequence[str],
    stored: bool,
    server: ServerMetrics | None,
) -> Judgement:
    found_data: Any = None
    if journal is not None and isinstance(journal.get("chaos_rec"), Mapping):
        found_data = journal["chaos_rec"]
    elif stored:
        try:
            found_data = ctx.verdict()
        except DrillError as exc:
            return Judgement([f"SLO figures unreadable: {exc}"], None, str(ctx.run_dir))
    checks = list(extra)
    if journal is not None and not isinstance(journal.get("chaos_rec"), Mapping):
        checks = journal_problems(journal, configuration, secrets) + checks
    if isinstance(found_data, Mapping):
        try:
            found = Judgement.from_dict(found_data)
        except DrillError as exc:
            return Judgement([*checks, f"SLO figures unreadable: {exc}"], None, str(ctx.run_dir))
        return Judgement([*checks, *found.checks], found.verdict, str(ctx.run_dir))
    try:
        verdict = _verdict(ctx, spec, server)
    except DrillError as exc:
        return Judgement([*checks, str(exc)], None, str(ctx.run_dir))
    return Judgement(checks, verdict, str(ctx.run_dir))
