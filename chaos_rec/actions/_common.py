"""Shared plumbing of the actions: typed config, the resolved target, phase marks."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from chaos_rec.core.ledger import FaultLedger
from chaos_rec.core.run import ACTIVE
from chaos_rec.core.target import Deployment
from chaos_rec.errors import ConfigError
from chaos_rec.extconfig import ExtConfig, ext_config
from chaos_rec.targets import load_deployment

__all__ = ["Cfg", "ledger", "mark", "setup"]

Cfg = Mapping[str, Any] | None


def setup(configuration: Cfg, secrets: Cfg) -> tuple[ExtConfig, Deployment]:
    """Typed config and the resolved deployment of an activity call."""
    cfg = ext_config(configuration, secrets)
    return cfg, load_deployment(cfg)


def ledger() -> FaultLedger:
    """The faults in effect in this process (undone by ``rollback_all`` and the control)."""
    return ACTIVE.ledger


def mark(cfg: ExtConfig, phase: str, by: str) -> None:
    """Mark a phase in the run context (skipped when the action runs without one)."""
    with contextlib.suppress(ConfigError):
        cfg.run_context().mark(phase, by)
