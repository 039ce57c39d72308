"""The phases of a drill and which one is in force at a moment (the SLO engine's clock)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

__all__ = ["PHASES", "Phase", "phase_at"]

Phase = Literal["steady", "fault", "recovery"]
PHASES: Final[tuple[str, ...]] = ("steady", "fault", "recovery")


def phase_at(phases: Iterable[Mapping[str, Any]], t: float, default: str = "steady") -> str:
    """The phase in force at time ``t`` (the last mark at or before it)."""
    current = default
    best = float("-inf")
    for mark in phases:
        mt = float(mark["t"])
        if best <= mt <= t:
            best = mt
            current = str(mark["phase"])
    return current
