"""Shared plumbing of the actions: typed config, phase marks, the fault ledger."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from chaos_rec.errors import ConfigError
from chaos_rec.extconfig import ExtConfig, ext_config
from chaos_rec.targets import Deployment, load_deployment

__all__ = ["LEDGER", "Cfg", "forget", "mark", "remember", "setup"]

Cfg = Mapping[str, Any] | None

# faults in effect in this process: key -> (description, undo)
LEDGER: dict[str, tuple[str, Callable[[], object]]] = {}


def setup(configuration: Cfg, secrets: Cfg) -> tuple[ExtConfig, Deployment]:
    """Typed config and the resolved deployment of an activity call."""
    cfg = ext_config(configuration, secrets)
    return cfg, load_deployment(cfg)


def mark(cfg: ExtConfig, phase: str, by: str) -> None:
    """Mark a phase in the run context (skipped when the action runs without one)."""
    with contextlib.suppress(ConfigError):
        cfg.run_context().mark(phase, by)


def remember(key: str, what: str, undo: Callable[[], object]) -> None:
    """Record a fault in effect and how to undo it."""
    LEDGER[key] = (what, undo)


def forget(key: str) -> None:
    """Drop a fault from the ledger (it was undone)."""
    LEDGER.pop(key, None)
