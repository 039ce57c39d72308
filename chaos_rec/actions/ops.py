"""Operational actions: resilience switches, phase marks, rollback of everything."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaos_rec.actions._common import Cfg, ledger, setup
from chaos_rec.backends.net import admin_request
from chaos_rec.core.guard import undo_faults
from chaos_rec.core.target import Deployment
from chaos_rec.errors import ChaosRecError, ConfigError, FaultError
from chaos_rec.extconfig import ext_config

__all__ = [
    "mark_phase",
    "reset_resilience",
    "rollback_all",
    "set_resilience",
]


def _admin_urls(dep: Deployment, target: str) -> list[tuple[str, str]]:
    """The admin endpoints of ``target``, every one allowlisted before any is called."""
    if target == "gateway":
        return [("gateway", dep.gateway())]
    reps = list(dep.replicas) if target == "replicas" else [dep.replica(target)]
    return [(rep.name, dep.replica_url(rep.name)) for rep in reps]


def set_resilience(
    switches: dict[str, bool],
    target: str = "gateway",
    *,
    configuration: Cfg = None,
    secrets: Cfg = None,
) -> dict[str, Any]:
    """Switch resilience mechanisms on/off (gateway, replica:<i> or replicas); verifies the map."""
    if (
        not isinstance(switches, Mapping)
        or not switches
        or not all(isinstance(v, bool) for v in switches.values())
    ):
        raise ConfigError(f"switches must map mechanism names to true/false, got {switches!r}")
    cfg, dep = setup(configuration, secrets)
    token = cfg.admin_token or dep.admin_token
    result: dict[str, Any] = {}
    for name, url in _admin_urls(dep, target):
        status, data = admin_request(
            url,
            "POST",
            "/admin/resilience",
            token=token,
            body=dict(switches),
            timeout=cfg.timeout_s,
        )
        if status in (401, 403):
            raise FaultError(
                f"{name} rejected the admin token ({status}): set secret chaos_rec_admin_token"
            )
        if status != 200:
            raise FaultError(f"{name} refused /admin/resilience {dict(switches)}: {data}")
        status, now = admin_request(
            url, "GET", "/admin/resilience", token=token, timeout=cfg.timeout_s
        )
        if status != 200 or not isinstance(now, dict):
            raise FaultError(f"{name}: GET /admin/resilience answered {status}")
        wrong = {k: now.get(k) for k, v in switches.items() if now.get(k) is not v}
        if wrong:
            raise FaultError(f"{name} did not apply resilience switches: now {wrong}")
        result[name] = now
    if not all(switches.values()):
        ledger().remember(
            f"resilience:{target}",
            f"switch resilience back on ({target})",
            lambda: reset_resilience(
                target, sorted(switches), configuration=configuration, secrets=secrets
            ),
        )
    return result


def reset_resilience(
    target: str = "gateway",
    mechanisms: list[str] | None = None,
    *,
    configuration: Cfg = None,
    secrets: Cfg = None,
) -> dict[str, Any]:
    """Switch resilience mechanisms back on (all that the endpoint reports, by default)."""
    cfg, dep = setup(configuration, secrets)
    token = cfg.admin_token or dep.admin_token
    result: dict[str, Any] = {}
    for name, url in _admin_urls(dep, target):
        names = mechanisms
        if names is None:
            status, now = admin_request(
                url, "GET", "/admin/resilience", token=token, timeout=cfg.timeout_s
            )
            if status != 200 or not isinstance(now, dict):
                raise FaultError(f"{name}: GET /admin/resilience answered {status}")
            names = sorted(now)
        result.update(
            set_resilience(
                {n: True for n in names},
                name if name == "gateway" else f"replica:{dep.replica(name).index}",
                configuration=configuration,
                secrets=secrets,
            )
        )
    ledger().forget(f"resilience:{target}")
    return result


def mark_phase(phase: str, *, configuration: Cfg = None, secrets: Cfg = None) -> dict[str, Any]:
    """Mark a phase (steady, fault or recovery) on the run's timeline."""
    cfg = ext_config(configuration, secrets)
    return dict(cfg.run_context().mark(phase, "mark_phase"))


def rollback_all(*, configuration: Cfg = None, secrets: Cfg = None) -> list[str]:
    """Undo every fault this process injected (newest first), then repair the reference stack."""
    try:
        cfg = ext_config(configuration, secrets)
    except ChaosRecError:  # a bad configuration must not keep this process's faults in effect
        report = undo_faults(ledger(), None, reference=False)
    else:
        state_dir = Path(cfg.state_dir) if cfg.state_dir else None
        report = undo_faults(ledger(), state_dir, reference=cfg.target == "reference")
    if report.errors:
        raise FaultError(
            f"rollback incomplete ({len(report.errors)} failed): " + "; ".join(report.errors)
        )
    return report.done
