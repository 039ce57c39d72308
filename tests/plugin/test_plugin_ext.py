"""The plugin with the real chaos-rec control and actions against a real fault proxy and Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos_rec.toxiproxy.client import ToxiproxyClient
from chaos_rec.toxiproxy.testing import running_fault_proxy
from tests.plugin.conftest import Writer, ext_action
from tests.support.procs import free_port, redis_server

CONTROL = {"name": "chaos-rec", "provider": {"type": "python", "module": "chaos_rec.controls"}}
NO_LOAD = {
    "chaos_rec_load": False,
    "chaos_rec_warmup_s": 0,
    "chaos_rec_safeguard_availability": None,
}


@pytest.fixture
def redis_link(project: pytest.Pytester) -> Iterator[tuple[str, Path]]:
    """Real Redis behind a real fault-proxy link ``feature-store``; yields (proxy URL, deployment file)."""
    with redis_server() as redis_url, running_fault_proxy() as url:
        port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        ToxiproxyClient(url).create_proxy(
            "feature-store", f"127.0.0.1:{free_port()}", f"127.0.0.1:{port}"
        )
        dep = project.path / "deployment.json"
        dep.write_text(
            json.dumps(
                {"gateway_url": "http://127.0.0.1:9", "toxiproxy_url": url, "redis_url": redis_url}
            )
        )
        yield url, dep


@pytest.mark.integration
def test_control_and_link_actions_run_as_a_drill(
    project: pytest.Pytester, write_experiment: Writer, redis_link: tuple[str, Path]
) -> None:
    url, dep = redis_link
    write_experiment(
        "feature_store_cut",
        method=[
            ext_action("cut", "cut_link", link="feature-store"),
            ext_action("restore", "restore_link", link="feature-store"),
        ],
        extra={"controls": [CONTROL], "configuration": NO_LOAD},
    )
    result = project.runpytest(
        "-m", "drill", "--drill-stack", str(dep), "--drill-report", "out", "-v"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*[[]feature_store_cut[]]*action cut: succeeded*"])
    phases = json.loads(
        (project.path / "out" / "drills" / "feature_store_cut" / "phases.json").read_text()
    )
    assert [p["phase"] for p in phases] == ["steady", "fault", "recovery"]
    journal = json.loads(
        (project.path / "out" / "drills" / "feature_store_cut" / "journal.json").read_text()
    )
    assert journal["chaos_rec"]["passed"] is True
    assert ToxiproxyClient(url).get_proxy("feature-store")["enabled"] is True


@pytest.mark.integration
def test_failed_extension_action_is_one_clear_line_and_leaves_nothing(
    project: pytest.Pytester, write_experiment: Writer, redis_link: tuple[str, Path]
) -> None:
    url, dep = redis_link
    write_experiment(
        "slow_then_bad",
        method=[
            ext_action("slow", "add_toxic", link="feature-store", attributes={"latency": 50}),
            ext_action("bad", "add_toxic", link="feature-store", toxic_type="meteor"),
        ],
        extra={"controls": [CONTROL], "configuration": NO_LOAD},
    )
    result = project.runpytest("-m", "drill", "--drill-stack", str(dep))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*- action bad failed: ConfigError: add_toxic: unknown toxic type 'meteor'*"]
    )
    assert "Traceback" not in result.stdout.str()
    assert ToxiproxyClient(url).toxics("feature-store") == []
