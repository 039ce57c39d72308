"""The reference-stack runtime: start, supervise, inspect and tear down the stack's processes.

Public surface (pinned in docs/contracts.md)::

    StackConfig, StackState, up, down, load_state, signal_component,
    wait_component_ready, restart_component, repair
"""

from __future__ import annotations

from chaos_rec.stack.api import (
    down,
    load_state,
    repair,
    restart_component,
    signal_component,
    up,
    wait_component_ready,
)
from chaos_rec.stack.config import StackConfig
from chaos_rec.stack.state import ComponentState, LinkState, StackState

__all__ = [
    "ComponentState",
    "LinkState",
    "StackConfig",
    "StackState",
    "down",
    "load_state",
    "repair",
    "restart_component",
    "signal_component",
    "up",
    "wait_component_ready",
]
