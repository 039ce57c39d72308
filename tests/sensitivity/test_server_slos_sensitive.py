"""The catalogue's server-side (PromQL) SLOs are sensitive: with the mechanism off, they fail.

Like ``test_drills_sensitive.py`` (same runner, same switches), but each case asserts that a
``promql`` SLO judged from the stack's own Prometheus is among the misses, so the server-side
check is proven to see the failure, not only the load generator. Needs the prometheus binary.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.sensitivity.stackutil import switched_off
from tests.sensitivity.test_drills_sensitive import GW_FAILOVER, TIMEOUTS, Case, run_drill

pytestmark = [
    pytest.mark.sensitivity,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="no prometheus binary"),
]

SERVER_CASES = [
    Case(
        "feature_store_outage",
        {"replicas": {"fallback": False}},
        frozenset(
            {
                ("promql_max:replica_error_share", "fault"),
                ("promql_min:fallback_share", "fault"),
            }
        ),
    ),
    Case("feature_store_blackhole", TIMEOUTS, frozenset({("promql_min:breaker_open_s", "fault")})),
    Case("gpu_node_loss", GW_FAILOVER, frozenset({("promql_max:gateway_error_share", "fault")})),
]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", [pytest.param(c, id=c.drill) for c in SERVER_CASES])
def test_server_side_slo_fails_without_its_mechanism(
    case: Case, stack_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAOS_REC_STATE_DIR", str(stack_dir))
    with switched_off(stack_dir, case.off):
        record = run_drill(tmp_path, case.drill)
    missed = {(s["slo"], s["phase"]) for s in record["slos"] if not s["passed"]}
    assert record["result"] == "failed" and record["_rc"] == 1, record["_out"][-3000:]
    assert case.slos <= missed, f"{case.drill}: missed {sorted(missed)}, wanted {sorted(case.slos)}"
    for slo, phase in case.slos:
        [result] = [s for s in record["slos"] if (s["slo"], s["phase"]) == (slo, phase)]
        assert result["observed"] is not None, result["line"]  # measured, not an empty query
        assert f"SLO {slo} missed in phase {phase}" in record["_out"]
