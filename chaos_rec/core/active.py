"""The one process-global state of chaos-rec: the faults in effect and the run in progress.

Chaos Toolkit calls activities as plain functions, so what they share within one process (the
run dir the control opened, the faults to undo at the end) lives here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chaos_rec.core.ledger import FaultLedger
from chaos_rec.core.rundir import RunContext

__all__ = ["ACTIVE", "Active"]


@dataclass
class Active:
    """Faults in effect in this process and the run dir its activities write into."""

    ledger: FaultLedger = field(default_factory=FaultLedger)
    ctx: RunContext | None = None

    def open(self, ctx: RunContext) -> None:
        """Make ``ctx`` the run dir of this process's activities."""
        self.ctx = ctx

    def close(self) -> None:
        """No run in progress any more."""
        self.ctx = None


ACTIVE = Active()
