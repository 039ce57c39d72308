"""A drill that needs Prometheus is skipped, with the reason, on a target without one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chaos_rec.core.target import Deployment, read_deployment_file
from chaos_rec.drill.capabilities import needs_prometheus, prometheus_skip_reason
from chaos_rec.stack.prometheus import MISSING_LINE
from tests.plugin.conftest import Writer, probe

PROMQL_SLO = {"fault": {"promql": {"name": "errors", "query": "sum(up)", "max": 1}}}


def _ext(slo: dict[str, Any]) -> dict[str, Any]:
    return {"extensions": [{"name": "chaos_rec", "slo": slo}]}


def test_a_promql_drill_is_skipped_on_a_deployment_without_prometheus(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    dep = project.path / "deployment.json"
    dep.write_text(json.dumps({"gateway_url": "http://127.0.0.1:9"}))
    write_experiment("server_side", extra=_ext(PROMQL_SLO))
    write_experiment("client_side", method=[probe("noop", "value", v=1)])
    result = project.runpytest("-m", "drill", "--drill-stack", str(dep), "-rs")
    result.assert_outcomes(skipped=1, passed=1)
    result.stdout.fnmatch_lines(
        [f"*needs capability prometheus (server-side SLOs): {dep} names no prometheus_url*"]
    )


def test_the_reason_is_the_stacks_note_and_empty_when_not_needed_or_present(
    tmp_path: Any,
) -> None:
    stack = Deployment("reference stack at /s", "http://127.0.0.1:9", None, None, (),
                       raw={"notes": [MISSING_LINE]})  # fmt: skip
    assert prometheus_skip_reason(PROMQL_SLO, {}, stack) == (
        f"needs capability prometheus (server-side SLOs): {MISSING_LINE}"
    )
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"gateway_url": "http://127.0.0.1:9"}))
    bare = read_deployment_file(path)
    assert prometheus_skip_reason(None, {}, bare) == ""
    assert needs_prometheus(PROMQL_SLO, {})
    uses_probe = {"method": [{"provider": {"func": "prometheus_query"}}]}
    assert needs_prometheus(None, uses_probe)
    assert "names no prometheus_url" in prometheus_skip_reason(None, uses_probe, bare)
    path.write_text(
        json.dumps({"gateway_url": "http://127.0.0.1:9", "prometheus_url": "http://127.0.0.1:9"})
    )
    assert prometheus_skip_reason(PROMQL_SLO, {}, read_deployment_file(path)) == ""
