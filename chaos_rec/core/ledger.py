"""The fault ledger: every fault in effect in this process, and how to undo it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from chaos_rec.errors import ChaosRecError

__all__ = ["Fault", "FaultLedger", "UndoReport"]


@dataclass(frozen=True)
class Fault:
    """One fault in effect: what undoing it does, and the undo itself."""

    key: str
    undo_text: str
    undo: Callable[[], object]


@dataclass(frozen=True)
class UndoReport:
    """What :meth:`FaultLedger.undo_all` did, and what failed (``what: reason``)."""

    done: list[str]
    errors: list[str]


class FaultLedger:
    """Faults in effect, oldest first; a key is one fault (re-injecting replaces it)."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}

    def remember(self, key: str, undo_text: str, undo: Callable[[], object]) -> None:
        """Record a fault in effect and how to undo it."""
        self._faults.pop(key, None)
        self._faults[key] = Fault(key, undo_text, undo)

    def forget(self, key: str) -> None:
        """Drop a fault (it was undone)."""
        self._faults.pop(key, None)

    def forget_where(self, test: Callable[[str], bool]) -> list[str]:
        """Drop every fault whose key passes ``test``; returns the keys dropped."""
        keys = [k for k in self._faults if test(k)]
        for key in keys:
            del self._faults[key]
        return keys

    def __contains__(self, key: object) -> bool:
        return key in self._faults

    def __len__(self) -> int:
        return len(self._faults)

    def __iter__(self) -> Iterator[Fault]:
        return iter(list(self._faults.values()))

    def clear(self) -> None:
        """Forget every fault without undoing it (tests; a process that starts over)."""
        self._faults.clear()

    def undo_all(self) -> UndoReport:
        """Undo every fault, newest first; each is forgotten whether its undo worked or not."""
        done: list[str] = []
        errors: list[str] = []
        for fault in reversed(list(self._faults.values())):
            try:
                fault.undo()
                done.append(fault.undo_text)
            except ChaosRecError as exc:
                errors.append(f"{fault.undo_text}: {exc}")
            self._faults.pop(fault.key, None)
        return UndoReport(done, errors)
