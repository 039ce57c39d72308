"""`stack up` feedback: each component as it becomes ready, while the stack comes up.

On a terminal one live line is rewritten in place (``starting replica-0, replica-1 · ready
redis, toxiproxy · 12.3 s``); otherwise (CI logs, pipes) a plain line per component when it
becomes ready (``stack up: redis ready after 0.4 s``), so nothing is silent for 15-30 s.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from chaos_rec.stack.state import StackState

__all__ = ["UpProgress"]


class UpProgress:
    """Called with each state read while ``up`` waits; prints what became ready."""

    def __init__(self, out: TextIO | None = None, *, live: bool | None = None) -> None:
        self.out = out or sys.stderr
        self.live = self.out.isatty() if live is None else live
        self.t0 = time.monotonic()
        self.ready: list[str] = []
        self._width = 0

    def __call__(self, state: StackState) -> None:
        comps = [(str(c.get("name")), str(c.get("status"))) for c in state.components()]
        elapsed = time.monotonic() - self.t0
        for name, status in comps:
            if status == "ready" and name not in self.ready:
                self.ready.append(name)
                if not self.live:
                    print(f"stack up: {name} ready after {elapsed:.1f} s", file=self.out)
        if self.live:
            waiting = [n for n, s in comps if s != "ready"]
            text = (
                f"starting {', '.join(waiting) or '-'} · ready {', '.join(self.ready) or '-'}"
                f" · {elapsed:.1f} s"
            )
            pad = max(0, self._width - len(text))
            self.out.write("\r" + text + " " * pad)
            self.out.flush()
            self._width = len(text)

    def done(self) -> None:
        """End the live line (the table of endpoints follows)."""
        if self.live and self._width:
            self.out.write("\n")
            self.out.flush()
