"""What a drill's run leaves for reports: its result, problems and SLO figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from chaos_rec.slo.result import SLOResult

Result = Literal["passed", "failed", "dry", "interrupted", "skipped"]


@dataclass
class DrillRecord:
    """One drill's outcome, as shown in the terminal, JUnit and the HTML report."""

    name: str
    nodeid: str
    title: str
    kind: Literal["experiment", "python"]
    result: Result = "passed"
    problems: list[str] = field(default_factory=list)
    slos: list[SLOResult] = field(default_factory=list)
    recovery_s: float | None = None
    max_recovery_s: float | None = None
    regressions: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    seed: int | None = None
    run_dir: str | None = None
    plan: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. SLO keys not judged on this target

    @property
    def failed(self) -> bool:
        """True when the drill must fail the build."""
        return self.result in ("failed", "interrupted")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (summary.json, record.json)."""
        data = asdict(self)
        data["slos"] = [r.to_report_dict() for r in self.slos]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DrillRecord:
        """Inverse of :meth:`to_dict`."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["slos"] = [SLOResult.from_dict(r) for r in data.get("slos", [])]
        return cls(**fields)
