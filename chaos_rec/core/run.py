"""One drill's run: load under the whole run, phases, safeguard, faults undone, one judgement.

Both doors drive it: the Chaos Toolkit control (``begin`` before the experiment, ``finish``
after it) and the pytest fixtures of Python drills. The target's seams are handed in, so the
core is tested with fakes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos_rec.core.guard import undo_faults
from chaos_rec.core.judge import Judgement, judge_run
from chaos_rec.core.lease import StackLease
from chaos_rec.core.ledger import FaultLedger
from chaos_rec.core.quality import measure_baseline, measure_ratio, needs_final_measurement
from chaos_rec.core.rundir import RunContext
from chaos_rec.core.safeguard import Safeguard
from chaos_rec.core.seams import LoadHandle, Traffic
from chaos_rec.errors import ChaosRecError
from chaos_rec.settings import default
from chaos_rec.slo.server import ServerMetrics
from chaos_rec.slo.spec import SLOSpec

__all__ = ["ACTIVE", "Active", "DrillRun", "RunPlan"]

logger = logging.getLogger("chaostoolkit")


@dataclass
class Active:
    """The one process-global state: faults in effect, and the run its activities write into.

    Chaos Toolkit calls activities as plain functions, so what they share within one process
    (the run the control began, the faults to undo at its end) lives here, once.
    """

    ledger: FaultLedger = field(default_factory=FaultLedger)
    ctx: RunContext | None = None
    run: DrillRun | None = None

    def open(self, run: DrillRun) -> None:
        """Make ``run`` the one this process's activities write into."""
        self.run, self.ctx = run, run.ctx

    def close(self) -> None:
        """No run in progress any more."""
        self.run = self.ctx = None


@dataclass(frozen=True)
class RunPlan:
    """What a run does besides the drill's own method: load, warm-up, safeguard, quality.

    ``fail_fast``: stop the run at the end of the first phase that missed a load SLO.
    """

    spec: Mapping[str, Any] | None = None
    load: bool = default("load")
    rps: float = default("load_rps")
    users: int = default("load_users")
    workers: int = default("load_workers")
    seed: int = default("seed")
    timeout_s: float = default("timeout_s")
    warmup_s: float = default("warmup_s")
    safeguard_availability: float | None = default("safeguard_availability")
    safeguard_s: float = default("safeguard_s")
    fail_fast: bool = default("fail_fast")
    quality_sample: int = 200
    quality_k: int = 10

    @property
    def judges_quality(self) -> bool:
        """True when the SLO spec has a quality floor (a baseline is measured in the steady state)."""
        return self.spec is not None and "min_quality_ratio" in self.spec

    @property
    def judges_server(self) -> bool:
        """True when a phase of the SLO spec has server-side (PromQL) budgets."""
        return self.spec is not None and any(
            isinstance(b, Mapping) and "promql" in b for b in self.spec.values()
        )


@dataclass
class DrillRun:
    """The run of one drill in this process (the process-global ``ACTIVE`` points at its dir)."""

    ctx: RunContext
    plan: RunPlan
    traffic: Traffic | None = None
    holdout: Path | None = None
    state_dir: Path | None = None
    reference: bool = True
    lease: StackLease | None = None
    say: Callable[[str], Any] = logger.info
    load: LoadHandle | None = None
    safeguard: Safeguard | None = None
    problems: list[str] = field(default_factory=list)
    server: ServerMetrics | None = None  # answers the spec's server-side (PromQL) budgets

    def begin(self) -> None:
        """Open the run dir, start the load, wait the warm-up, mark steady, take the baseline."""
        ACTIVE.open(self)
        if self.plan.spec is not None:
            self.ctx.write_slo_spec(self.plan.spec)
        if self.plan.load and self.traffic is not None:
            self.load = self.traffic.start_load(
                self.ctx.run_dir, rps=self.plan.rps, users=self.plan.users,
                seed=self.plan.seed, timeout_s=self.plan.timeout_s, workers=self.plan.workers,
            )  # fmt: skip
            time.sleep(self.plan.warmup_s)
        self.ctx.mark("steady", "chaos_rec.controls")
        if self.plan.judges_quality and self.traffic is not None:
            measure_baseline(
                self.ctx, self.traffic, self.holdout, self.plan.quality_sample,
                self.plan.quality_k, self.plan.seed,
            )  # fmt: skip
        fail_fast = (
            SLOSpec.parse(self.plan.spec) if self.plan.fail_fast and self.plan.spec else None
        )
        if self.load is not None and (self.plan.safeguard_availability is not None or fail_fast):
            self.safeguard = Safeguard(
                self.ctx, self.plan.safeguard_availability, self.plan.safeguard_s, fail_fast
            ).start()

    def _stop(self) -> None:
        """Undo faults, stop the safeguard and the load; problems are kept for the judgement."""
        if self.safeguard is not None:
            self.safeguard.stop()
        try:
            undone = undo_faults(ACTIVE.ledger, self.state_dir, reference=self.reference)
        except ChaosRecError as exc:
            self.problems.append(f"rollback failed: {exc}")
        else:
            if undone.done:
                self.say(f"chaos-rec: rolled back: {'; '.join(undone.done)}")
            if undone.errors:
                self.problems.append(
                    f"rollback failed: rollback incomplete ({len(undone.errors)} failed): "
                    + "; ".join(undone.errors)
                )
        if self.load is not None:
            with contextlib.suppress(ChaosRecError):
                self.load.stop()
            self.load = None

    def abort(self) -> None:
        """Stop everything the run started (a door failed before the drill ran)."""
        self._stop()
        self._close()

    def finish(
        self,
        journal: Mapping[str, Any] | None = None,
        *,
        configuration: Mapping[str, Any] | None = None,
        secrets: Mapping[str, Any] | None = None,
    ) -> Judgement:
        """Undo faults, stop the load, judge the run and record the judgement in the run dir."""
        self._stop()
        extra = [*self.problems, *(self.safeguard.tripped if self.safeguard else [])]
        try:
            if (
                self.plan.judges_quality
                and self.traffic is not None
                and needs_final_measurement(self.ctx)
            ):
                measure_ratio(self.ctx, self.traffic, self.holdout, self.plan.seed)
            judgement = judge_run(
                self.ctx, self.plan.spec, journal, configuration=configuration,
                secrets=secrets, extra=extra, server=self.server,
            )  # fmt: skip
        except ChaosRecError as exc:
            judgement = Judgement(
                [*extra, f"SLO evaluation failed: {exc}"], None, str(self.ctx.run_dir)
            )
        self.ctx.write_verdict(judgement.to_dict())
        self._close()
        return judgement

    def _close(self) -> None:
        if ACTIVE.ctx is self.ctx:
            ACTIVE.close()
        if self.lease is not None:
            try:
                self.lease.release()
            except ChaosRecError as exc:
                logger.error(f"chaos-rec: stack down failed: {exc}")


ACTIVE = Active()
