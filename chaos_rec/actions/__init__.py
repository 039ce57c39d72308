"""Chaos Toolkit actions of chaos-rec: each injects a fault, verifies it, and has a rollback.

Use ``"module": "chaos_rec.actions"`` in an experiment's python providers.
"""

from __future__ import annotations

from chaos_rec.actions.data import (
    push_bundle,
    push_corrupt_bundle,
    rematerialize_features,
    restart_redis_empty,
    restore_bundle,
)
from chaos_rec.actions.links import add_toxic, clear_link, cut_link, remove_toxic, restore_link
from chaos_rec.actions.load import end_spike, measure_capacity, spike_load
from chaos_rec.actions.ops import mark_phase, reset_resilience, rollback_all, set_resilience
from chaos_rec.actions.replicas import (
    hang_replica,
    kill_replica,
    resume_replica,
    wait_replica_restored,
)

__all__ = [
    "add_toxic",
    "clear_link",
    "cut_link",
    "end_spike",
    "hang_replica",
    "kill_replica",
    "mark_phase",
    "measure_capacity",
    "push_bundle",
    "push_corrupt_bundle",
    "rematerialize_features",
    "remove_toxic",
    "reset_resilience",
    "restart_redis_empty",
    "restore_bundle",
    "restore_link",
    "resume_replica",
    "rollback_all",
    "set_resilience",
    "spike_load",
    "wait_replica_restored",
]
