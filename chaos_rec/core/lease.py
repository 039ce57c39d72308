"""The stack lease: bring the reference stack up if it is not running, take it down only if we did.

The Chaos Toolkit control (one experiment), the pytest session (every experiment of a run) and
the ``drill_stack`` fixture (Python drills) all hold one; a stack that was already running is
used as it is (after undoing what a crashed run left on it) and left running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from chaos_rec.errors import StackNotRunning

__all__ = ["ReferenceStack", "StackLease", "reference_stack"]


class ReferenceStack(Protocol):
    """What a lease needs of the reference stack runtime (``chaos_rec.stack``)."""

    def running(self, state_dir: Path) -> bool:
        """True when a live stack has its state in ``state_dir``."""
        ...

    def repair(self, state_dir: Path) -> list[str]:
        """Undo faults left on a running stack; says what it did."""
        ...

    def up(self, state_dir: Path, config_file: Path | None) -> None:
        """Start the stack (returns once every component is ready)."""
        ...

    def down(self, state_dir: Path) -> None:
        """Stop the stack and remove its state."""
        ...


class _Runtime:
    """The real runtime, imported when first used (it pulls in process management)."""

    def running(self, state_dir: Path) -> bool:
        from chaos_rec import stack

        try:
            stack.load_state(state_dir)
        except StackNotRunning:
            return False
        return True

    def repair(self, state_dir: Path) -> list[str]:
        from chaos_rec import stack

        return stack.repair(state_dir)

    def up(self, state_dir: Path, config_file: Path | None) -> None:
        from chaos_rec import stack

        stack.up(stack.StackConfig.load(config_file, state_dir=state_dir))

    def down(self, state_dir: Path) -> None:
        from chaos_rec import stack

        stack.down(state_dir)


def reference_stack() -> ReferenceStack:
    """The reference stack runtime."""
    return _Runtime()


@dataclass
class StackLease:
    """A hold on the reference stack in ``state_dir``; :meth:`release` stops it if we started it."""

    state_dir: Path
    config_file: Path | None = None
    runtime: ReferenceStack = field(default_factory=reference_stack)
    say: Callable[[str], Any] | None = None  # told before a start and after a repair
    repair_running: bool = True  # False where a DrillGuard recovers (it refuses a live session)
    started: bool = False
    held: bool = False
    repaired: list[str] = field(default_factory=list)

    def acquire(self) -> StackLease:
        """Use the running stack (repairing leftovers) or start one; idempotent."""
        if self.held:
            return self
        if self.runtime.running(self.state_dir):
            if self.repair_running:
                self.repaired = self.runtime.repair(self.state_dir)
                if self.repaired and self.say is not None:
                    self.say(f"undid leftovers of an earlier run: {'; '.join(self.repaired)}")
            self.held = True
            return self
        if self.say is not None:
            self.say(f"starting the reference stack in {self.state_dir}")
        self.runtime.up(self.state_dir, self.config_file)
        self.started = self.held = True
        return self

    def release(self) -> None:
        """Take the stack down if this lease started it."""
        self.held = False
        if self.started:
            self.started = False
            self.runtime.down(self.state_dir)

    def __enter__(self) -> StackLease:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
