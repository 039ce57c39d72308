"""Load, validate and describe one Chaos Toolkit experiment file as a drill."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos_rec.core.capabilities import experiment_needs
from chaos_rec.errors import ConfigError

SLO_EXTENSION = "chaos_rec"


@dataclass(frozen=True)
class DrillSpec:
    """A validated experiment, its tags as marker names and its SLO spec."""

    path: Path
    experiment: dict[str, Any]
    markers: tuple[str, ...]
    slo: Mapping[str, Any] | None
    slo_source: str | None
    needs: Mapping[str, str] = field(default_factory=dict)  # capability -> what needs it

    @property
    def title(self) -> str:
        """The experiment's title."""
        return str(self.experiment.get("title", self.path.stem))

    @property
    def needs_reference_stack(self) -> bool:
        """True when the experiment drives the reference stack through the chaos-rec control."""
        conf = self.experiment.get("configuration") or {}
        if not isinstance(conf, dict) or conf.get("chaos_rec_target", "reference") != "reference":
            return False
        return any(
            isinstance(c, dict) and (c.get("provider") or {}).get("module") == "chaos_rec.controls"
            for c in self.experiment.get("controls") or []
        )


def marker_name(tag: str) -> str:
    """A tag as a valid marker name: lowercase, non-word characters as ``_``."""
    name = re.sub(r"\W+", "_", tag.strip().lower()).strip("_")
    if not name:
        raise ConfigError(f"tag {tag!r} has no usable characters for a marker name")
    return f"tag_{name}" if name[0].isdigit() else name


def experiment_slo(experiment: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The SLO spec from the experiment's ``chaos_rec`` extension, if any."""
    for ext in experiment.get("extensions", None) or []:
        if isinstance(ext, Mapping) and ext.get("name") == SLO_EXTENSION and "slo" in ext:
            slo = ext["slo"]
            if not isinstance(slo, Mapping):
                raise ConfigError("extension chaos_rec: 'slo' must be an object")
            return slo
    return None


def validate_slo(slo: Mapping[str, Any], source: str) -> None:
    """Parse the SLO spec with the SLO engine; ConfigError names the source."""
    try:
        from chaos_rec.slo import SLOSpec
    except ImportError as exc:  # pragma: no cover - the SLO engine is part of the package
        raise ConfigError(f"{source}: cannot validate the SLO spec: {exc}") from exc
    try:
        SLOSpec.parse(slo)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def load_drill(
    path: Path, default_slo: Mapping[str, Any] | None = None, default_source: str | None = None
) -> DrillSpec:
    """Read and validate one experiment; ConfigError carries the validation message."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read experiment: {exc.strerror}") from exc
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"an experiment is a JSON object, got {type(data).__name__}")
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid

    try:
        ensure_experiment_is_valid(copy.deepcopy(data))
    except ChaosException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"invalid experiment: {first}") from exc
    tags = data.get("tags", []) or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError("invalid experiment: 'tags' must be a list of strings")
    slo = experiment_slo(data)
    source: str | None = f"{path.name} extensions.chaos_rec.slo" if slo is not None else None
    if slo is None and default_slo is not None:
        slo, source = default_slo, default_source or "default SLO spec"
    if slo is not None:
        validate_slo(slo, source or path.name)
    markers = tuple(dict.fromkeys(marker_name(t) for t in tags))
    needs = experiment_needs(data, slo, path.name)
    return DrillSpec(
        path=path, experiment=data, markers=markers, slo=slo, slo_source=source, needs=needs
    )


def prepared(
    spec: DrillSpec, configuration: Mapping[str, Any], slo: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A deep copy of the experiment with configuration added and the SLO spec (``slo``, else
    the drill's) attached, replacing the experiment's own."""
    experiment = copy.deepcopy(spec.experiment)
    conf = dict(experiment.get("configuration") or {})
    conf.update(configuration)
    experiment["configuration"] = conf
    slo = spec.slo if slo is None else slo
    if slo is not None:
        exts = list(experiment.get("extensions") or [])
        ours = next((e for e in exts if _is_ours(e)), None)
        if ours is None:
            exts.append({"name": SLO_EXTENSION, "slo": dict(slo)})
        else:  # the deep copy's own: its requires and optional stay
            ours["slo"] = dict(slo)
        experiment["extensions"] = exts
    return experiment


def _is_ours(ext: Any) -> bool:
    return isinstance(ext, Mapping) and ext.get("name") == SLO_EXTENSION


def _activity_line(activity: Mapping[str, Any]) -> str:
    provider = activity.get("provider") or {}
    kind = provider.get("type", "?")
    if kind == "python":
        target = f"{provider.get('module')}.{provider.get('func')}"
    elif kind == "http":
        target = f"{provider.get('method', 'GET')} {provider.get('url')}"
    else:
        target = str(provider.get("path", "?"))
    args = provider.get("arguments")
    arg_text = f" {json.dumps(args, sort_keys=True)}" if args else ""
    pauses = activity.get("pauses") or {}
    pause_text = "".join(f" (pause {k} {v}s)" for k, v in pauses.items())
    tol = f" tolerance={json.dumps(activity['tolerance'])}" if "tolerance" in activity else ""
    bg = " [background]" if activity.get("background") else ""
    return f"{activity.get('type', '?')} {activity.get('name', '?')}: {target}{arg_text}{tol}{pause_text}{bg}"


def plan(spec: DrillSpec) -> list[str]:
    """The drill's plan as readable lines (what ``--drill-dry`` shows)."""
    exp = spec.experiment
    lines = [f"drill {spec.path.stem}: {spec.title}"]
    hypo = exp.get("steady-state-hypothesis") or {}
    lines.append(f"  steady state: {hypo.get('title', '(none)')}")
    lines += [f"    - {_activity_line(a)}" for a in hypo.get("probes", []) or []]
    lines.append("  method:")
    lines += [f"    - {_activity_line(a)}" for a in exp.get("method", []) or []]
    lines.append("  rollbacks:")
    lines += [f"    - {_activity_line(a)}" for a in exp.get("rollbacks", []) or []] or [
        "    (none)"
    ]
    if spec.slo is not None:
        lines.append(f"  SLO ({spec.slo_source}): {json.dumps(dict(spec.slo), sort_keys=True)}")
    else:
        lines.append("  SLO: (none)")
    return lines
