"""The run directory of one drill: the only reader and writer of its files.

Files (see docs/contracts.md, "Run context"):

- ``phases.jsonl``: one ``{"t", "phase", "by"}`` line per phase change;
- ``timeline.jsonl``: one row per second of load, appended by the load generator;
- ``quality.json``: the quality replay's baseline and measurements;
- ``slo_spec.json``: the SLO spec the run is judged by;
- ``slo_verdict.json``: the judgement of the run;
- other JSON artefacts (``capacity.json``, ``safeguard.json``, load levels).

This module imports nothing of chaos_rec but its errors and the SLO engine's phase clock: the
load generator (a Locust subprocess) and both doors (Chaos Toolkit, pytest) use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, TypedDict, cast

from chaos_rec.errors import ConfigError, DrillError
from chaos_rec.slo.phases import PHASES, Phase, phase_at

__all__ = [
    "PHASES",
    "Phase",
    "PhaseMark",
    "RunContext",
    "TimelineRow",
    "phase_at",
    "read_jsonl",
    "stop_stale_load",
]

PHASES_FILE: Final = "phases.jsonl"
TIMELINE_FILE: Final = "timeline.jsonl"
QUALITY_FILE: Final = "quality.json"
SLO_SPEC_FILE: Final = "slo_spec.json"
VERDICT_FILE: Final = "slo_verdict.json"
SERVER_SERIES_FILE: Final = "server_series.json"  # the server-side SLO queries over the run
STAMP: Final = "%Y%m%dT%H%M%S"


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
    """Read a JSON-lines file; a missing file is empty, a torn line is skipped.

    A line that is not JSON can only be one being written right now (every writer appends
    whole lines with one ``write``), so it is skipped rather than failing the reader.
    """
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
            continue
        if isinstance(value, dict):
            rows.append(value)
    return rows


def append_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Append rows as JSON lines with one ``write`` (safe against concurrent appenders)."""
    text = "".join(json.dumps(dict(r), separators=(",", ":")) + "\n" for r in rows)
    if not text:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def stop_stale_load(run_dir: Path, name: str = "load") -> bool:
    """Kill a Locust (and its workers) left running by a crashed run, from their pid files;
    True if one was."""
    found = False
    run_dir = Path(run_dir)
    for pid_file in [run_dir / f"{name}.pid", *sorted(run_dir.glob(f"{name}-worker-*.pid"))]:
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if b"locust" in cmdline:
            found = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)
    return found


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:60] or "run"


class RunContext:
    """The run dir of one drill: phase marks, load timeline, quality, verdict and artefacts."""

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.run_dir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def create(
        cls, state_dir: Path | str, name: str = "run", *, stamp: str | None = None
    ) -> RunContext:
        """A fresh run dir ``<state_dir>/runs/<UTC stamp>-<name>`` (``-2``… if taken)."""
        base = Path(state_dir) / "runs"
        head = f"{stamp or time.strftime(STAMP, time.gmtime())}-{_slug(name)}"
        candidate = base / head
        n = 1
        while candidate.exists():
            n += 1
            candidate = base / f"{head}-{n}"
        candidate.mkdir(parents=True)
        return cls(candidate)

    def path(self, name: str) -> Path:
        """Path of a file of the run dir."""
        return self.run_dir / name

    @property
    def phases_path(self) -> Path:
        """Path of ``phases.jsonl``."""
        return self.run_dir / PHASES_FILE

    @property
    def timeline_path(self) -> Path:
        """Path of ``timeline.jsonl``."""
        return self.run_dir / TIMELINE_FILE

    # -- phases -----------------------------------------------------------------------

    def mark(self, phase: str, by: str, *, t: float | None = None) -> PhaseMark:
        """Append a phase change (``steady``, ``fault`` or ``recovery``)."""
        if phase not in PHASES:
            raise ConfigError(f"unknown phase {phase!r}: expected one of {', '.join(PHASES)}")
        mark: PhaseMark = {"t": time.time() if t is None else float(t), "phase": phase, "by": by}
        append_jsonl(self.phases_path, [dict(mark)])
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

    # -- timeline ---------------------------------------------------------------------

    def append_timeline(self, rows: Iterable[Mapping[str, Any]], name: str = TIMELINE_FILE) -> None:
        """Append timeline rows (the load generator's per-second flush)."""
        append_jsonl(self.run_dir / name, rows)

    def timeline(self, name: str = TIMELINE_FILE) -> list[TimelineRow]:
        """Every timeline row so far, in time order."""
        rows = [cast(TimelineRow, r) for r in read_jsonl(self.run_dir / name) if "t" in r]
        return sorted(rows, key=lambda r: int(r["t"]))

    def window(self, seconds: float, *, until: float | None = None) -> list[TimelineRow]:
        """Timeline rows of the last ``seconds`` seconds (up to ``until``, default now)."""
        end = time.time() if until is None else until
        start = end - seconds
        return [r for r in self.timeline() if start <= r["t"] < end]

    def last_row(self) -> dict[str, Any] | None:
        """The newest timeline row, read from the file's tail (cheap for live progress)."""
        try:
            with self.timeline_path.open("rb") as fh:
                fh.seek(0, 2)
                fh.seek(max(0, fh.tell() - 4096))
                tail = fh.read().decode("utf-8", "replace").strip().splitlines()
        except OSError:
            return None
        for line in reversed(tail):
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                return row
        return None

    # -- JSON artefacts -----------------------------------------------------------------

    def write_json(self, name: str, data: Any) -> Path:
        """Write a JSON artefact into the run dir atomically; returns its path."""
        path = self.run_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    def read_json(self, name: str) -> Any:
        """Read a JSON artefact of the run dir; None when absent, DrillError when not JSON."""
        path = self.run_dir / name
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise DrillError(f"{path} is not JSON: {exc}") from exc

    def _object(self, name: str) -> dict[str, Any] | None:
        data = self.read_json(name)
        if data is not None and not isinstance(data, dict):
            raise DrillError(f"{self.run_dir / name} must hold a JSON object")
        return data

    def quality(self) -> dict[str, Any] | None:
        """The quality replay's baseline and measurements (``quality.json``), if any."""
        return self._object(QUALITY_FILE)

    def write_quality(self, data: Mapping[str, Any]) -> None:
        """Replace ``quality.json``."""
        self.write_json(QUALITY_FILE, dict(data))

    def slo_spec(self) -> dict[str, Any] | None:
        """The SLO spec this run is judged by (``slo_spec.json``), if one was written."""
        return self._object(SLO_SPEC_FILE)

    def write_slo_spec(self, spec: Mapping[str, Any]) -> None:
        """Record the SLO spec this run is judged by."""
        self.write_json(SLO_SPEC_FILE, dict(spec))

    def verdict(self) -> dict[str, Any] | None:
        """The run's judgement (``slo_verdict.json``), if it was judged."""
        return self._object(VERDICT_FILE)

    def write_verdict(self, judgement: Mapping[str, Any]) -> None:
        """Record the run's judgement (``slo_verdict.json``)."""
        self.write_json(VERDICT_FILE, dict(judgement))

    def server_series(self) -> list[dict[str, Any]]:
        """The server-side SLO queries over the run (``server_series.json``); [] when none."""
        data = self.read_json(SERVER_SERIES_FILE)
        if data is not None and not isinstance(data, list):
            raise DrillError(f"{self.run_dir / SERVER_SERIES_FILE} must hold a JSON list")
        return list(data or [])

    def write_server_series(self, series: list[dict[str, Any]]) -> None:
        """Record the server-side series (read by the report)."""
        self.write_json(SERVER_SERIES_FILE, series)
