"""Run context: the run dir of one drill, its phase marks and the load timeline.

Files in the run dir (see docs/contracts.md, "Run context"):

- ``phases.jsonl``: one ``{"t", "phase", "by"}`` line per phase change;
- ``timeline.jsonl``: one row per second, written by the load runner;
- ``slo_verdict.json``, ``quality.json`` and other JSON artefacts.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, TypedDict, cast

from chaos_rec.errors import ConfigError

__all__ = [
    "PHASES",
    "Phase",
    "PhaseMark",
    "RunContext",
    "TimelineRow",
    "phase_at",
    "read_jsonl",
]

Phase = Literal["steady", "fault", "recovery"]
PHASES: Final[tuple[str, ...]] = ("steady", "fault", "recovery")

PHASES_FILE: Final = "phases.jsonl"
TIMELINE_FILE: Final = "timeline.jsonl"


class PhaseMark(TypedDict):
    """One line of ``phases.jsonl``."""

    t: float
    phase: str
    by: str


class TimelineRow(TypedDict):
    """One line of ``timeline.jsonl`` (one second of load)."""

    t: int
    phase: str
    requests: int
    failures: int
    status: dict[str, int]
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    tiers: dict[str, int]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file; a missing file is empty, a torn last line is skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    rows: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written right now
        if isinstance(value, dict):
            rows.append(value)
    return rows


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


class RunContext:
    """The run dir of one drill: phase marks, load timeline and JSON artefacts."""

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.run_dir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def create(cls, state_dir: Path | str, *, stamp: str | None = None) -> RunContext:
        """A fresh run dir ``<state_dir>/runs/<UTC timestamp>``."""
        base = Path(state_dir) / "runs"
        stamp = stamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        candidate = base / stamp
        n = 1
        while candidate.exists():
            n += 1
            candidate = base / f"{stamp}-{n}"
        return cls(candidate)

    @property
    def phases_path(self) -> Path:
        """Path of ``phases.jsonl``."""
        return self.run_dir / PHASES_FILE

    @property
    def timeline_path(self) -> Path:
        """Path of ``timeline.jsonl``."""
        return self.run_dir / TIMELINE_FILE

    def mark(self, phase: str, by: str, *, t: float | None = None) -> PhaseMark:
        """Append a phase change (``steady``, ``fault`` or ``recovery``)."""
        if phase not in PHASES:
            raise ConfigError(f"unknown phase {phase!r}: expected one of {', '.join(PHASES)}")
        mark: PhaseMark = {"t": time.time() if t is None else float(t), "phase": phase, "by": by}
        line = json.dumps(mark, separators=(",", ":")) + "\n"
        # one write() of a short line in append mode: safe against concurrent writers
        fd = os.open(self.phases_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
        return mark

    def phases(self) -> list[PhaseMark]:
        """Every phase mark so far, oldest first."""
        marks = [cast(PhaseMark, m) for m in read_jsonl(self.phases_path) if "t" in m]
        return sorted(marks, key=lambda m: float(m["t"]))

    def current_phase(self) -> str:
        """The phase in force now (``steady`` when nothing was marked)."""
        marks = self.phases()
        return str(marks[-1]["phase"]) if marks else "steady"

    def phase_since(self, phase: str) -> float | None:
        """Start time of the latest stretch of ``phase``, or None if it never began."""
        found: float | None = None
        for mark in self.phases():
            if mark["phase"] == phase:
                found = float(mark["t"])
        return found

    def timeline(self) -> list[TimelineRow]:
        """Every timeline row so far, in time order."""
        rows = [cast(TimelineRow, r) for r in read_jsonl(self.timeline_path) if "t" in r]
        return sorted(rows, key=lambda r: int(r["t"]))

    def window(self, seconds: float, *, until: float | None = None) -> list[TimelineRow]:
        """Timeline rows of the last ``seconds`` seconds (up to ``until``, default now)."""
        end = time.time() if until is None else until
        start = end - seconds
        return [r for r in self.timeline() if start <= r["t"] < end]

    def write_json(self, name: str, data: Any) -> Path:
        """Write a JSON artefact into the run dir atomically; returns its path."""
        path = self.run_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    def read_json(self, name: str) -> Any:
        """Read a JSON artefact of the run dir; None when it is absent."""
        path = self.run_dir / name
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))
