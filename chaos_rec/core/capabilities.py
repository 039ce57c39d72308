"""Capabilities: what a drill needs from its target, and what is missing on one.

A capability is a name in :data:`CAPABILITIES`, ``link:<name>`` (a link of that name the target
can fault) or ``toxic:<type>`` (a link backend that adds that Toxiproxy toxic type: a fault proxy
adds every type, Chaos Mesh some). A drill's needs come from its activities
(:data:`ACTIVITY_NEEDS`: the chaos-rec action or probe, the link it names, the toxic type
``add_toxic`` adds) and its SLO spec (:data:`SLO_NEEDS`); an experiment may declare
them in ``extensions[chaos_rec].requires`` (the catalogue does), and a declaration that leaves
out a need is refused in one line. A capability only some SLO keys need may be declared
``optional``: without it those keys are left out of the verdict with a note, not passed. What a target offers is computed by
``chaos_rec.backends.capabilities`` from the backends its deployment file names; the doors skip
(pytest) or stop before any fault (``chaos run``) when :func:`missing` is not empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from chaos_rec.errors import ConfigError

__all__ = [
    "ACTIVITY_NEEDS",
    "ANY_LINK",
    "ANY_TOXIC",
    "CAPABILITIES",
    "LINK_ACTIONS",
    "REFERENCE_METRICS",
    "SLO_NEEDS",
    "describe",
    "experiment_needs",
    "missing",
    "needs",
    "optional_capabilities",
    "promql_need",
    "unjudged",
]

CAPABILITIES: Final[Mapping[str, str]] = {
    "processes": "kill, hang and resume a replica and wait until it is restored",
    "replicas": "the replicas' own health endpoints (replicas[].http_url)",
    "data": "restore and verify the feature store",
    "data-wipe": "wipe the feature store (its data is lost)",
    "rollout": "push a model version and restore the previous one",
    "resilience-switches": "turn the reference stack's protecting mechanisms off and on",
    "fallback-marker": "an API that says when an answer came from a fallback tier",
    "holdout": "a hold-out file of interactions (the quality replay)",
    "prometheus": "a Prometheus that scrapes the target (server-side SLOs)",
}
REFERENCE_METRICS: Final = "chaos-rec"  # the reference stack's metric family (cr_*)
ANY_LINK: Final = "link:*"  # offered by a fault proxy whose links the deployment does not list
ANY_TOXIC: Final = "toxic:*"  # offered by a fault proxy: every toxic type
_NAMED: Final = ("link", "metrics", "toxic")  # the capabilities named <kind>:<name>
_PROCESSES: Final = ("processes",)
_ROLLOUT: Final = ("rollout",)
# chaos-rec action/probe -> the capabilities it needs (links: by the link it names, below)
ACTIVITY_NEEDS: Final[Mapping[str, tuple[str, ...]]] = {
    "kill_replica": _PROCESSES,
    "hang_replica": _PROCESSES,
    "resume_replica": _PROCESSES,
    "wait_replica_restored": _PROCESSES,
    "push_bundle": _ROLLOUT,
    "push_corrupt_bundle": _ROLLOUT,
    "restore_bundle": _ROLLOUT,
    "restart_redis_empty": ("data-wipe",),
    "rematerialize_features": ("data",),
    "feature_store_consistent": ("data",),
    "set_resilience": ("resilience-switches",),
    "reset_resilience": ("resilience-switches",),
    "quality_baseline": ("holdout",),
    "quality_ratio": ("holdout",),
    "fallback_ratio": ("fallback-marker",),
    "replica_ready": ("replicas",),
    "replicas_ready": ("replicas",),
    "prometheus_query": ("prometheus",),
}
# SLO keys -> the capability their figure needs
SLO_NEEDS: Final[Mapping[str, str]] = {
    "max_fallback_ratio": "fallback-marker",
    "min_quality_ratio": "holdout",
    "promql": "prometheus",  # a phase's server-side budgets (also metrics:<family>, if named)
}
_MODULES: Final = ("chaos_rec.actions", "chaos_rec.probes")
# actions whose ``link`` argument names a fault-proxy link (``link:<name>`` or the bare name)
LINK_ACTIONS: Final = frozenset(
    {"add_toxic", "remove_toxic", "cut_link", "restore_link", "clear_link"}
)


def _activities(experiment: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    for part in (hypothesis.get("probes"), experiment.get("method"), experiment.get("rollbacks")):
        for activity in part or []:
            if isinstance(activity, Mapping):
                yield activity


def _promql_entries(value: Any) -> list[Mapping[str, Any]]:
    entries = value if isinstance(value, list) else [value]
    return [e for e in entries if isinstance(e, Mapping)]


def promql_need(entry: Mapping[str, Any]) -> str:
    """What one server-side budget needs: ``metrics:<family>`` when it names one, else any
    ``prometheus``."""
    family = entry.get("metrics")
    return f"metrics:{family}" if isinstance(family, str) and family else "prometheus"


def _slo_needs(slo: Any) -> Iterator[tuple[str, str]]:
    """(capability, why) for each SLO key (and server-side budget) that needs one."""
    if not isinstance(slo, Mapping):
        return
    for key, value in slo.items():
        if key == "promql":
            for entry in _promql_entries(value):
                why = f"the server-side budget {entry.get('name', '?')}"
                yield "prometheus", why
                if promql_need(entry) != "prometheus":
                    yield promql_need(entry), why
        elif key in SLO_NEEDS:
            yield SLO_NEEDS[key], f"the SLO key {key}"
        else:
            yield from _slo_needs(value)


def needs(experiment: Mapping[str, Any], slo: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Capability -> why (the first activity or SLO key needing it), in order of appearance."""
    found: dict[str, str] = {}
    for activity in _activities(experiment):
        provider = activity.get("provider") or {}
        module = str(provider.get("module") or "")
        if not module.startswith(_MODULES):
            continue
        func, label = str(provider.get("func") or ""), str(activity.get("name") or "?")
        for cap in ACTIVITY_NEEDS.get(func, ()):
            found.setdefault(cap, f"{func} ({label})")
        args = provider.get("arguments") or {}
        link = args.get("link") if isinstance(args, Mapping) and func in LINK_ACTIONS else None
        if isinstance(link, str) and link:
            name = link if link.startswith("link:") else f"link:{link}"
            found.setdefault(name, f"{func} ({label})")
        if func == "add_toxic" and isinstance(args, Mapping):
            found.setdefault(f"toxic:{args.get('toxic_type', 'latency')}", f"{func} ({label})")
    for cap, why in _slo_needs(slo):
        found.setdefault(cap, why)
    return found


def _check_name(name: Any, where: str) -> str:
    named = isinstance(name, str) and name.split(":", 1)[0] in _NAMED
    if isinstance(name, str) and (name in CAPABILITIES or (named and name.split(":", 1)[1])):
        return name
    known = ", ".join([*CAPABILITIES, "link:<name>", "metrics:<family>", "toxic:<type>"])
    raise ConfigError(f"{where}: unknown capability {name!r} (known: {known})")


def missing(wanted: Mapping[str, str], offered: Iterable[str] | None) -> list[str]:
    """The capabilities in ``wanted`` the target does not offer (``offered`` None: all offered)."""
    if offered is None:
        return []
    have = set(offered)
    anyof = {prefix for prefix, cap in (("link:", ANY_LINK), ("toxic:", ANY_TOXIC)) if cap in have}
    return [cap for cap in wanted if not (cap in have or cap[: cap.find(":") + 1] in anyof)]


def describe(cap: str, why: str) -> str:
    """``processes (kill, hang … ; needed by kill_replica (kill-replica-0))``."""
    if cap.startswith("toxic:"):
        what = f"a link backend that adds {cap[6:]} toxics"
    else:
        what = CAPABILITIES.get(cap) or f"a fault-proxy link named {cap[5:]!r}"
    return f"{cap} ({what}; needed by {why})"


EXTENSION_KEYS: Final = ("name", "optional", "requires", "slo")  # of extensions[chaos_rec]


def _extension(experiment: Mapping[str, Any], where: str = "experiment") -> Mapping[str, Any]:
    for ext in experiment.get("extensions") or []:
        if isinstance(ext, Mapping) and ext.get("name") == "chaos_rec":
            unknown = sorted(str(k) for k in ext if k not in EXTENSION_KEYS)
            if unknown:
                raise ConfigError(
                    f"{where} extensions.chaos_rec: unknown key {unknown[0]!r} "
                    f"(known: {', '.join(EXTENSION_KEYS[1:])})"
                )
            return ext
    return {}


def optional_capabilities(experiment: Mapping[str, Any], where: str = "experiment") -> list[str]:
    """``extensions[chaos_rec].optional``: capabilities only some SLO keys need.

    On a target without one, the drill still runs and the SLO keys that need it are left out of
    the verdict with a note saying so (:func:`unjudged`), never counted as passed.
    """
    value = _extension(experiment, where).get("optional", [])
    where = f"{where} extensions.chaos_rec.optional"
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be a list of capability names, got {value!r}")
    for name in value:
        cap = _check_name(name, where)
        if cap not in SLO_NEEDS.values() and not cap.startswith("metrics:"):
            raise ConfigError(f"{where}: {name!r} is needed by no SLO key; only those are optional")
    return list(value)


def experiment_needs(
    experiment: Mapping[str, Any], slo: Mapping[str, Any] | None = None, where: str = "experiment"
) -> dict[str, str]:
    """:func:`declared_needs` of an experiment, reading ``extensions[chaos_rec]`` (its
    ``requires`` and, unless ``slo`` is given, its ``slo``), less its optional capabilities."""
    ext = _extension(experiment, where)
    if slo is None and isinstance(ext.get("slo"), Mapping):
        slo = ext["slo"]
    optional = optional_capabilities(experiment, where)
    derived = needs(experiment, slo)
    declared = ext.get("requires")
    hard = {cap: why for cap, why in derived.items() if cap not in optional}
    if declared is None:
        return hard
    where = f"{where} extensions.chaos_rec.requires"
    if not isinstance(declared, list):
        raise ConfigError(f"{where}: must be a list of capability names, got {declared!r}")
    names = [_check_name(name, where) for name in declared]
    for cap, why in hard.items():
        if cap not in names:
            raise ConfigError(f"{where}: leaves out {cap!r}, which {why} needs")
    return {name: derived.get(name, "the experiment's requires") for name in names}


def unjudged(
    slo: Mapping[str, Any] | None, lacking: Iterable[str]
) -> tuple[dict[str, Any] | None, list[str]]:
    """The SLO spec without the keys (and server-side budgets) whose capability is ``lacking``,
    and a note per key left out."""
    gone = set(lacking)
    if slo is None or not gone:
        return (dict(slo) if slo is not None else None), []
    kept: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in slo.items():
        if SLO_NEEDS.get(key) in gone:
            notes.append(f"{key} not judged: the target lacks {SLO_NEEDS[key]}")
        elif isinstance(value, Mapping):
            kept[key] = _phase_without(str(key), value, gone, notes)
        else:
            kept[key] = value
    return kept, notes


def _phase_without(
    phase: str, budgets: Mapping[str, Any], gone: set[str], notes: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in budgets.items():
        if key == "promql":
            entries = _promql_entries(value)
            left = [e for e in entries if not ({"prometheus", promql_need(e)} & gone)]
            for e in entries:
                if e not in left:
                    lacks = promql_need(e) if promql_need(e) in gone else "prometheus"
                    notes.append(
                        f"{phase} promql {e.get('name', '?')} not judged: the target lacks {lacks}"
                    )
            if left:
                out[key] = left
        elif SLO_NEEDS.get(key) in gone:
            notes.append(f"{phase} {key} not judged: the target lacks {SLO_NEEDS[key]}")
        else:
            out[key] = value
    return out
