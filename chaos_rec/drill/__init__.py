"""Drills as pytest items: collection, running, judging, rollback guarantee and fixtures.

Public surface: the objects Python drills receive from the fixtures.
"""

from __future__ import annotations

from chaos_rec.drill.config import DrillConfig
from chaos_rec.drill.faults import FaultProxy
from chaos_rec.drill.fixtures import DrillTarget
from chaos_rec.drill.python_drill import PythonDrill

__all__ = ["DrillConfig", "DrillTarget", "FaultProxy", "PythonDrill"]
