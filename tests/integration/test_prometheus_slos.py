"""Server-side SLOs with a real Prometheus server scraping a real /metrics endpoint.

A ``prometheus_client`` HTTP server in this process serves counters the test drives; the
Debian ``prometheus`` binary (started by the stack's own launcher) scrapes it every second.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from chaos_rec import probes
from chaos_rec.errors import ProbeError
from chaos_rec.slo import SLOSpec
from chaos_rec.slo.promql_judge import judge_promql, server_series
from chaos_rec.slo.server import PrometheusAPI
from chaos_rec.stack.procs import port_in_use

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="no prometheus binary"),
]

EXPORTER_PORT, PROM_PORT = 19530, 19531
SHARE = (
    '(sum(increase(t_answers_total{tier!="none"}[$window])) or vector(0))'
    " / sum(increase(t_answers_total[$window]))"
)


@dataclass
class Scraped:
    """A real Prometheus scraping the test's counters, and the phases the test drove."""

    api: PrometheusAPI
    phases: list[dict[str, Any]]
    end: float
    home: Path


def _wait(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not become ready")


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    registry = CollectorRegistry()
    answers = Counter("t_answers", "answers by tier", ["tier"], registry=registry)
    server, thread = start_http_server(EXPORTER_PORT, "127.0.0.1", registry=registry)
    home = tmp_path_factory.mktemp("prom")
    cmd = [sys.executable, "-m", "chaos_rec.stack.prometheus_launcher"]
    cmd += ["--binary", str(shutil.which("prometheus")), "--dir", str(home)]
    cmd += ["--listen", f"127.0.0.1:{PROM_PORT}"]
    cmd += ["--target", f"exporter=http://127.0.0.1:{EXPORTER_PORT}/metrics"]
    log = (home / "prometheus.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{PROM_PORT}"
        _wait(url + "/-/ready")
        api = PrometheusAPI(url)
        for tier in ("none", "popular"):
            answers.labels(tier=tier).inc(0)  # both series exist before the phases
        deadline = time.monotonic() + 30
        while api.latest() < time.time() - 1 and time.monotonic() < deadline:
            time.sleep(0.2)  # the first scrape has happened
        phases: list[dict[str, Any]] = []
        for phase, tier, seconds in (("steady", "none", 6), ("fault", "popular", 6)):
            phases.append({"phase": phase, "t": time.time()})
            for _ in range(seconds * 5):
                answers.labels(tier=tier).inc(10)
                time.sleep(0.2)
        end = time.time()
        yield Scraped(api, phases, end, home)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
        server.shutdown()
        thread.join(timeout=5)


def spec(*entries: dict[str, Any]) -> SLOSpec:
    return SLOSpec.parse({"steady": {"promql": list(entries)}, "fault": {"promql": list(entries)}})


def test_phases_are_judged_over_their_own_window(scraped: Scraped) -> None:
    share = {"name": "fallback_share", "query": SHARE, "max": 0.5}
    steady, fault = judge_promql(spec(share), scraped.phases, scraped.end, scraped.api)
    assert (steady.phase, fault.phase) == ("steady", "fault")
    assert steady.passed and steady.observed is not None and steady.observed < 0.2
    assert not fault.passed and fault.observed is not None and fault.observed > 0.8
    assert fault.window == (scraped.phases[1]["t"], scraped.end)
    assert "SLO promql_max:fallback_share missed in phase fault (window " in fault.line()


def test_a_floor_and_a_rate_in_seconds(scraped: Scraped) -> None:
    rate = {"name": "answers_rate", "query": "sum(rate(t_answers_total[$window]))", "min": 20}
    steady, fault = judge_promql(spec(rate), scraped.phases, scraped.end, scraped.api)
    # 10 answers every 0.2 s = about 50 per second in each phase
    for result in (steady, fault):
        assert result.passed and result.observed is not None
        assert 30 < result.observed < 70, result.line()


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("sum(rate(t_no_such_metric_total[$window]))", "returned no series"),
        ("sum(rate(t_answers_total[$window])", "query failed: Prometheus at http://127.0.0.1"),
        ("sum(rate(t_answers_total[$window])) * 0 / 0", "returned NaN"),
    ],
)
def test_errors_and_empty_answers_fail_with_a_clear_line(
    scraped: Scraped, query: str, why: str
) -> None:
    entry = {"name": "broken", "query": query, "max": 1e9}
    for result in judge_promql(spec(entry), scraped.phases, scraped.end, scraped.api):
        assert not result.passed and result.observed is None
        assert why in result.line() and "budget 1e+09" in result.line()


def test_an_unreachable_prometheus_fails_the_check(scraped: Scraped) -> None:
    dead = PrometheusAPI("http://127.0.0.1:19539", timeout_s=2.0)
    entry = {"name": "fallback_share", "query": SHARE, "max": 0.5}
    [steady, fault] = judge_promql(spec(entry), scraped.phases, scraped.end, dead, lambda s: None)
    assert not steady.passed and not fault.passed
    assert "query failed: Prometheus query" in fault.line()
    assert "127.0.0.1:19539" in fault.line()


def test_the_run_series_hold_both_phases(scraped: Scraped) -> None:
    entry = {"name": "fallback_share", "query": SHARE, "max": 0.5}
    [row] = server_series(spec(entry), scraped.phases[0]["t"], scraped.end, scraped.api)
    assert row["name"] == "fallback_share" and "error" not in row
    [series] = row["series"]
    values = [v for _, v in series["points"]]
    assert len(values) >= 8
    assert min(values) < 0.2 and max(values) > 0.8


def test_the_probe_reads_the_deployment_files_prometheus(scraped: Scraped, tmp_path: Path) -> None:
    dep = tmp_path / "deployment.json"
    dep.write_text(
        json.dumps(
            {
                "gateway_url": "http://127.0.0.1:19538",
                "prometheus_url": f"http://127.0.0.1:{PROM_PORT}",
                "prometheus_headers": {"Authorization": "Bearer not-checked-here"},
            }
        ),
        encoding="utf-8",
    )
    conf = {"chaos_rec_target": str(dep)}
    value = probes.prometheus_query(
        "sum(increase(t_answers_total[$window]))", window_s=600, configuration=conf
    )
    assert value == pytest.approx(600, rel=0.2)  # 2 phases x 30 steps x 10
    with pytest.raises(ProbeError, match="returned no series"):
        probes.prometheus_query("t_no_such_metric", configuration=conf)
    dep.write_text(json.dumps({"gateway_url": "http://127.0.0.1:19538"}), encoding="utf-8")
    with pytest.raises(ProbeError, match="set prometheus_url"):
        probes.prometheus_query("up", configuration=conf)


def test_the_launcher_writes_its_config_and_storage_in_its_dir(scraped: Scraped) -> None:
    config = json.loads((scraped.home / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == [
        f"127.0.0.1:{EXPORTER_PORT}"
    ]
    assert (scraped.home / "data").is_dir()


def test_the_launched_prometheus_is_the_supervised_pid_and_leaves_no_port(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "chaos_rec.stack.prometheus_launcher"]
    cmd += ["--binary", str(shutil.which("prometheus")), "--dir", str(tmp_path)]
    cmd += ["--listen", "127.0.0.1:19532"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait("http://127.0.0.1:19532/-/ready")
        exe = Path(f"/proc/{proc.pid}/exe").resolve()
        assert exe.name == "prometheus"  # exec'd: a stop of this pid stops Prometheus
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert not port_in_use(19532)
