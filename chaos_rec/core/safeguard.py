"""The safeguard: stop a run early, rolling back — when availability collapsed below a floor
(before the fault does harm), or, with fail-fast, at the end of the first phase that missed an
SLO (its verdict is settled; the rest of the run would only cost time)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass

from chaos_rec.core.rundir import RunContext
from chaos_rec.slo.judge import first_missed_phase
from chaos_rec.slo.metrics import availability
from chaos_rec.slo.spec import SLOSpec

__all__ = ["SAFEGUARD_FILE", "Safeguard", "Trip", "fail_fast_until"]

logger = logging.getLogger("chaostoolkit")
SAFEGUARD_FILE = "safeguard.json"


@dataclass(frozen=True)
class Trip:
    """Why the safeguard stops the run; ``until``: where a fail-fast stop ends the judged run."""

    reason: str
    until: float | None = None


class Safeguard:
    """Watches the run's timeline once a second; trips on the first reason to stop.

    ``floor``: trip when a whole ``window_s`` is below that availability (None: off).
    ``fail_fast``: trip when a phase that has ended missed one of this spec's load budgets.
    Tripping writes ``safeguard.json``, keeps the reason (the run fails with it) and sends this
    process SIGUSR1, which Chaos Toolkit's runner turns into a graceful interrupt with rollbacks.
    """

    def __init__(
        self,
        ctx: RunContext,
        floor: float | None,
        window_s: float,
        fail_fast: SLOSpec | None = None,
    ) -> None:
        self.ctx = ctx
        self.floor = floor
        self.window_s = window_s
        self.fail_fast = fail_fast
        self.tripped: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="chaos-rec-safeguard")

    def start(self) -> Safeguard:
        """Start watching."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        self._stop.set()

    def check(self) -> Trip | None:
        """One look at the run so far: the reason to stop it, or None."""
        return self._collapsed() or self._missed()

    def _collapsed(self) -> Trip | None:
        if self.floor is None:
            return None
        rows = self.ctx.window(self.window_s)
        if len(rows) < self.window_s - 1:
            return None
        value = availability(rows)
        if value is None or value >= self.floor:
            return None
        return Trip(
            f"safeguard: availability {value:.3f} < floor {self.floor:g} "
            f"for {self.window_s:g}s; aborting and rolling back"
        )

    def _missed(self) -> Trip | None:
        if self.fail_fast is None:
            return None
        miss = first_missed_phase(self.fail_fast, self.ctx.timeline(), self.ctx.phases())
        if miss is None:
            return None
        what = ", ".join(f"{r.slo} {r.observed:g} vs {r.budget:g}" for r in miss.misses)
        return Trip(
            f"fail-fast: phase {miss.phase} missed its SLOs ({what}); stopped there and rolled "
            "back, later phases not judged",
            miss.until,
        )

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            trip = self.check()
            if trip is None:
                continue
            self.tripped.append(trip.reason)
            record = {"t": time.time(), "reason": trip.reason, "until": trip.until}
            self.ctx.write_json(SAFEGUARD_FILE, record)
            logger.error(f"chaos-rec: {trip.reason}")
            handler = signal.getsignal(signal.SIGUSR1)
            if callable(handler):  # Chaos Toolkit's runner handles it: interrupt gracefully
                os.kill(os.getpid(), signal.SIGUSR1)
            return


def fail_fast_until(ctx: RunContext) -> float | None:
    """Where a fail-fast stop of this run ended what is judged (None: it ran to its end)."""
    record = ctx.read_json(SAFEGUARD_FILE)
    until = record.get("until") if isinstance(record, dict) else None
    return float(until) if isinstance(until, int | float) else None
