"""The Chaos Toolkit door's target: its configuration resolved into a :class:`Deployment`.

``chaos_rec_target`` is ``reference`` (the stack in ``chaos_rec_state_dir``) or the path of a
deployment file (shape: ``chaos_rec.core.target``); ``chaos_rec_gateway_url``,
``chaos_rec_toxiproxy_url`` and the secret ``chaos_rec_admin_token`` override its endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaos_rec.core.target import Deployment, Overrides, ReplicaTarget, parse_target, resolve
from chaos_rec.extconfig import ExtConfig

__all__ = ["Deployment", "ReplicaTarget", "load_deployment", "parse_target"]


def load_deployment(cfg: ExtConfig, secrets: Mapping[str, Any] | None = None) -> Deployment:
    """The deployment named by ``chaos_rec_target`` (the reference stack by default); the CTK
    ``secrets`` are where its ``${secret:NAME}`` references are looked up first."""
    over = Overrides(cfg.gateway_url, cfg.toxiproxy_url, cfg.admin_token, secrets)
    return resolve(cfg.target, Path(cfg.state_dir) if cfg.state_dir else None, over)
