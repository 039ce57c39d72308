"""What a drill's run leaves for reports: its result, problems and SLO figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from chaos_rec.slo.spec import PHASE_KEYS

Result = Literal["passed", "failed", "dry", "interrupted"]

# SLOs where a larger observed value is better (budget is a floor): from the one SLO table.
HIGHER_IS_BETTER = frozenset(
    {key for key, (_, direction) in PHASE_KEYS.items() if direction == "min"} | {"quality_ratio"}
)


@dataclass(frozen=True)
class SLORow:
    """One SLO judged in one phase: observed vs budget."""

    slo: str
    phase: str
    observed: float | None
    budget: float
    unit: str
    passed: bool
    window: tuple[float, float] | None = None
    line: str = ""

    @property
    def key(self) -> str:
        """Stable key for baselines: ``phase.slo``."""
        return f"{self.phase}.{self.slo}"

    def text(self) -> str:
        """The one-line verdict (engine's own line when it gave one)."""
        if self.line:
            return self.line
        obs = "n/a" if self.observed is None else f"{self.observed:g}"
        cmp = ">=" if self.slo in HIGHER_IS_BETTER else "<="
        state = "met" if self.passed else "missed"
        return f"SLO {self.slo} {state} in phase {self.phase}: observed {obs} {self.unit} (budget {cmp} {self.budget:g} {self.unit})".replace(
            "  ", " "
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SLORow:
        """Build from a verdict result dict (``SLOResult`` fields)."""
        window = data.get("window")
        observed = data.get("observed")
        return cls(
            slo=str(data.get("slo", "?")),
            phase=str(data.get("phase", "-")),
            observed=None if observed is None else float(observed),
            budget=float(data.get("budget", 0.0)),
            unit=str(data.get("unit", "") or ""),
            passed=bool(data.get("passed", False)),
            window=(float(window[0]), float(window[1])) if window else None,
            line=str(data.get("line", "") or ""),
        )


@dataclass
class DrillRecord:
    """One drill's outcome, as shown in the terminal, JUnit and the HTML report."""

    name: str
    nodeid: str
    title: str
    kind: Literal["experiment", "python"]
    result: Result = "passed"
    problems: list[str] = field(default_factory=list)
    slos: list[SLORow] = field(default_factory=list)
    recovery_s: float | None = None
    max_recovery_s: float | None = None
    regressions: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    seed: int | None = None
    run_dir: str | None = None
    plan: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when the drill must fail the build."""
        return self.result in ("failed", "interrupted")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (summary.json)."""
        data = asdict(self)
        data["slos"] = [asdict(r) | {"key": r.key} for r in self.slos]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DrillRecord:
        """Inverse of :meth:`to_dict`."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["slos"] = [SLORow.from_dict(r) for r in data.get("slos", [])]
        return cls(**fields)
