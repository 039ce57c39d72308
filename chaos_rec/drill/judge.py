"""Judge a Chaos Toolkit journal and the run dir's SLO figures: the three traps and the SLOs."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chaos_rec.errors import ChaosRecError, ConfigError, DrillError
from chaos_rec.slo.result import SLOResult


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
        if probe.get("status") != "succeeded":
            return f"probe {_name(probe)} failed: {_first_line(probe.get('exception'))}"
        if probe.get("tolerance_met") is False:
            tol = (probe.get("activity") or {}).get("tolerance")
            return (
                f"probe {_name(probe)} returned {json.dumps(probe.get('output'), default=str)[:200]}, "
                f"outside tolerance {json.dumps(tol, default=str)}"
            )
    return "a probe was not within tolerance"


def judge_journal(
    journal: Mapping[str, Any],
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
) -> list[str]:
    """Everything wrong with a run that Chaos Toolkit may still call ``completed``."""
    problems: list[str] = []
    status = journal.get("status")
    experiment = journal.get("experiment") or {}
    has_hypothesis = bool((experiment.get("steady-state-hypothesis") or {}).get("probes"))
    states = journal.get("steady_states") or {}
    before = states.get("before")
    if has_hypothesis and before is not None and not before.get("steady_state_met", False):
        problems.append(
            "steady state was NOT met before the method, so no fault was injected "
            f"(Chaos Toolkit still says '{status}'): {_failed_probe(before)}"
        )
    for entry in journal.get("run", []) or []:
        activity = entry.get("activity") or {}
        kind = activity.get("type", "activity")
        if entry.get("status") == "failed":
            problems.append(f"{kind} {_name(entry)} failed: {_first_line(entry.get('exception'))}")
        elif kind == "probe" and "tolerance" in activity:
            verdict = _method_probe_within(
                activity["tolerance"], entry.get("output"), configuration, secrets
            )
            if verdict is not None and not verdict:
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
    # chaos_rec.controls marks the journal deviated/failed for SLO misses; only a real
    # steady-state probe failure after the method is a deviation.
    marked = isinstance(journal.get("chaos_rec"), Mapping)
    if (after is not None and not after.get("steady_state_met", True)) or (
        journal.get("deviated") and not marked and after is None
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
    elif status == "failed" and not problems and not marked:
        problems.append("Chaos Toolkit marked the run failed")
    return problems


def _method_probe_within(
    tolerance: Any,
    value: Any,
    configuration: Mapping[str, Any] | None,
    secrets: Mapping[str, Any] | None,
) -> bool | None:
    from chaoslib.hypothesis import within_tolerance

    try:
        return bool(
            within_tolerance(tolerance, value, dict(configuration or {}), dict(secrets or {}))
        )
    except Exception:  # a tolerance chaoslib cannot apply to this value is reported as a miss
        return False


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows: list[dict[str, Any]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            raise DrillError(f"{path.name} line {n} is not JSON: {exc}") from exc
    return rows


def read_timeline(run_dir: Path) -> list[dict[str, Any]]:
    """The load timeline rows of a run dir (``timeline.jsonl``), oldest first."""
    return _read_jsonl(run_dir / "timeline.jsonl")


def read_phases(run_dir: Path) -> list[dict[str, Any]]:
    """The phase marks of a run dir (``phases.jsonl``)."""
    return _read_jsonl(run_dir / "phases.jsonl")


def verdict_rows(verdict: Mapping[str, Any]) -> tuple[list[SLOResult], float | None, bool]:
    """SLO rows, recovery seconds and the overall pass flag from a verdict dict."""
    results = verdict.get("results")
    if not isinstance(results, Sequence):
        raise DrillError("slo verdict has no 'results' list")
    rows = [SLOResult.from_dict(r) for r in results if isinstance(r, Mapping)]
    recovery = verdict.get("recovery_s")
    passed = bool(verdict.get("passed", all(r.passed for r in rows)))
    return rows, (None if recovery is None else float(recovery)), passed


# Lines of the control's own journal judgement that the plugin reports itself, in more detail.
_COVERED = re.compile(
    r"^(SLO |steady state was not met before|steady state deviated after the method$"
    r"|(action|probe) .+ failed: |rollback \S+ failed$)"
)


def _control_verdict(data: Mapping[str, Any]) -> tuple[list[SLOResult], float | None, list[str]]:
    """The control's ``{"passed", "problems", "run_dir", "slo": Verdict.to_dict()}`` shape."""
    inner = data.get("slo")
    rows: list[SLOResult] = []
    recovery: float | None = None
    if isinstance(inner, Mapping):
        rows, recovery, _ = verdict_rows(inner)
    raw = data.get("problems") or []
    problems = [str(p) for p in raw if isinstance(p, str) and not _COVERED.match(p)]
    return rows, recovery, problems


def slo_verdict(
    run_dir: Path, spec: Mapping[str, Any] | None, journal: Mapping[str, Any] | None = None
) -> tuple[list[SLOResult], float | None, list[str]]:
    """Read ``slo_verdict.json`` (or the journal's ``chaos_rec``), else evaluate the spec over the run dir."""
    verdict_file = run_dir / "slo_verdict.json"
    data: Any = None
    if verdict_file.is_file():
        try:
            data = json.loads(verdict_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise DrillError(f"{verdict_file} is not JSON: {exc}") from exc
    elif journal is not None and isinstance(journal.get("chaos_rec"), Mapping):
        data = journal["chaos_rec"]
    if isinstance(data, Mapping):
        if "results" not in data:
            return _control_verdict(data)
        rows, recovery, passed = verdict_rows(data)
        problems = [] if passed or any(not r.passed for r in rows) else ["SLO verdict: failed"]
        return rows, recovery, problems
    if data is not None:
        raise DrillError(f"{verdict_file} must hold a JSON object")
    if spec is None:
        return [], None, []
    timeline = read_timeline(run_dir)
    if not timeline:
        return (
            [],
            None,
            [
                "an SLO spec is set but the run left no load timeline (timeline.jsonl) and no "
                "slo_verdict.json: enable the chaos_rec.controls control (it runs the load)"
            ],
        )
    return evaluate(spec, timeline, read_phases(run_dir), _quality(run_dir))


def _quality(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "quality.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DrillError(f"{path} is not JSON: {exc}") from exc
    return data if isinstance(data, dict) else None


def evaluate(
    spec: Mapping[str, Any],
    timeline: list[dict[str, Any]],
    phases: list[dict[str, Any]],
    quality: dict[str, Any] | None = None,
) -> tuple[list[SLOResult], float | None, list[str]]:
    """Run the SLO engine over a timeline; returns rows, recovery seconds and problems."""
    from chaos_rec import slo

    try:
        verdict = slo.evaluate(slo.SLOSpec.parse(spec), timeline, phases, quality)
    except ConfigError:
        raise
    except ChaosRecError as exc:
        raise DrillError(f"SLO evaluation failed: {exc}") from exc
    rows, recovery, passed = verdict_rows(verdict.to_dict())
    problems = [] if passed or any(not r.passed for r in rows) else ["SLO verdict: failed"]
    return rows, recovery, problems
