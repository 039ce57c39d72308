"""The safeguard: abort a run whose availability collapsed below a floor, before it does harm."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from chaos_rec.core.rundir import RunContext
from chaos_rec.slo.metrics import availability

__all__ = ["Safeguard"]

logger = logging.getLogger("chaostoolkit")


class Safeguard:
    """Watches the run's timeline once a second; trips when a whole window is below ``floor``.

    Tripping writes ``safeguard.json``, keeps the reason (the run fails with it) and sends this
    process SIGUSR1, which Chaos Toolkit's runner turns into a graceful interrupt with rollbacks.
    """

    def __init__(self, ctx: RunContext, floor: float, window_s: float) -> None:
        self.ctx = ctx
        self.floor = floor
        self.window_s = window_s
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

    def check(self) -> str | None:
        """One look at the last window: the reason to abort, or None."""
        rows = self.ctx.window(self.window_s)
        if len(rows) < self.window_s - 1:
            return None
        value = availability(rows)
        if value is None or value >= self.floor:
            return None
        return (
            f"safeguard: availability {value:.3f} < floor {self.floor:g} "
            f"for {self.window_s:g}s; aborting and rolling back"
        )

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            reason = self.check()
            if reason is None:
                continue
            self.tripped.append(reason)
            self.ctx.write_json("safeguard.json", {"t": time.time(), "reason": reason})
            logger.error(f"chaos-rec: {reason}")
            handler = signal.getsignal(signal.SIGUSR1)
            if callable(handler):  # Chaos Toolkit's runner handles it: interrupt gracefully
                os.kill(os.getpid(), signal.SIGUSR1)
            return
