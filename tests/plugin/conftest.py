"""pytester helpers: a project with experiments whose activities are plain Python providers."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import chaoslib.experiment
import chaoslib.run  # noqa: F401
import httpcore  # noqa: F401
import httpx  # noqa: F401
import pytest

import chaos_rec.drill.items
import chaos_rec.drill.runner  # noqa: F401
from chaos_rec.toxiproxy.client import ToxiproxyClient
from chaos_rec.toxiproxy.testing import running_fault_proxy
from tests.support.procs import free_port


def pytest_configure(config: pytest.Config) -> None:
    """Load pytester for this folder (``pytest_plugins`` is only allowed in the top conftest)."""
    config.pluginmanager.import_plugin("pytester")


PROVIDERS = '''
import json, os, signal, time
from pathlib import Path

def value(v):
    return v

def boom():
    raise RuntimeError("injector failed: replica-9 does not exist")

def touch(path):
    Path(path).write_text("x")
    return True

def add_toxic(url, link, latency=100):
    import httpx
    body = {"name": "drill_latency", "type": "latency", "attributes": {"latency": latency}}
    r = httpx.post(f"{url}/proxies/{link}/toxics", json=body, timeout=5.0)
    r.raise_for_status()
    return r.json()

def after_experiment_control(context, state, configuration=None, secrets=None, **kwargs):
    """Mimic chaos_rec.controls: judge, put the judgement into the journal, mark it failed."""
    miss = {"slo": "p99_ms", "phase": "fault", "window": [0, 5], "observed": 900.0, "budget": 400.0,
            "unit": "ms", "passed": False,
            "line": "SLO p99_ms missed in phase fault (window 00:00:00–00:00:05): observed 900.0 ms > budget 400 ms"}
    state["chaos_rec"] = {
        "passed": False,
        "checks": ["safeguard tripped: availability 0.31 < 0.5 for 10 s"],
        "problems": ["safeguard tripped: availability 0.31 < 0.5 for 10 s", miss["line"]],
        "run_dir": configuration["chaos_rec_run_dir"],
        "slo": {"passed": False, "recovery_s": 4.0, "misses": [miss["line"]], "results": [miss]},
    }
    state["status"] = "failed"
    state["deviated"] = True

def safeguard_abort():
    os.kill(os.getpid(), signal.SIGUSR1)
    time.sleep(5)
    return "not aborted"

def nap(seconds):
    time.sleep(seconds)
    return True

def absent(path):
    return not Path(path).exists()

def sigint():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
    return "not interrupted"

def figures(configuration, p99, budget=400.0, recovery=3.0, verdict=True):
    """Write a small load timeline, phases and an SLO verdict into the run dir."""
    run = Path(configuration["chaos_rec_run_dir"])
    t0 = 1_700_000_000
    rows = []
    for i in range(12):
        phase = "steady" if i < 4 else ("fault" if i < 8 else "recovery")
        lat = p99 if phase == "fault" else 80.0
        rows.append({"t": t0 + i, "phase": phase, "requests": 100, "failures": 1 if phase == "fault" else 0,
                     "status": {"200": 100}, "p50_ms": lat / 3, "p95_ms": lat * 0.8, "p99_ms": lat,
                     "max_ms": lat * 1.2, "tiers": {"none": 90, "cached_features": 10}})
    (run / "timeline.jsonl").write_text("".join(json.dumps(r) + "\\n" for r in rows))
    marks = [{"t": t0, "phase": "steady", "by": "t"}, {"t": t0 + 4, "phase": "fault", "by": "t"},
             {"t": t0 + 8, "phase": "recovery", "by": "t"}]
    (run / "phases.jsonl").write_text("".join(json.dumps(m) + "\\n" for m in marks))
    if not verdict:
        return True
    results = [
        {"slo": "p99_ms", "phase": "fault", "window": [t0 + 4, t0 + 8], "observed": p99,
         "budget": budget, "unit": "ms", "passed": p99 <= budget},
        {"slo": "availability", "phase": "fault", "window": [t0 + 4, t0 + 8], "observed": 0.99,
         "budget": 0.98, "unit": "ratio", "passed": True},
    ]
    verdict = {"passed": all(r["passed"] for r in results), "recovery_s": recovery, "results": results}
    (run / "slo_verdict.json").write_text(json.dumps(verdict))
    return True
'''


def probe(name: str, func: str, tolerance: Any = None, **arguments: Any) -> dict[str, Any]:
    """A python-provider probe of the test providers module."""
    act: dict[str, Any] = {
        "type": "probe",
        "name": name,
        "provider": {
            "type": "python",
            "module": "cr_providers",
            "func": func,
            "arguments": arguments,
        },
    }
    if tolerance is not None:
        act["tolerance"] = tolerance
    return act


def action(name: str, func: str, **arguments: Any) -> dict[str, Any]:
    """A python-provider action of the test providers module."""
    act = probe(name, func, **arguments)
    act["type"] = "action"
    return act


def ext_action(name: str, func: str, **arguments: object) -> dict[str, object]:
    """An action of ``chaos_rec.actions``."""
    return {
        "type": "action",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaos_rec.actions",
            "func": func,
            "arguments": arguments,
        },
    }


Writer = Callable[..., Path]


@pytest.fixture
def fault_proxy_url(tmp_path: Path) -> Iterator[str]:
    """A real fault proxy process with one link ``feature-store`` to a loopback port."""
    with running_fault_proxy() as url:
        ToxiproxyClient(url).create_proxy(
            "feature-store", f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        )
        yield url


@pytest.fixture
def deployment(project: pytest.Pytester, fault_proxy_url: str) -> Path:
    """A deployment file naming the real fault proxy (``--drill-stack FILE``)."""
    path = project.path / "deployment.json"
    path.write_text(
        json.dumps({"gateway_url": "http://127.0.0.1:9", "toxiproxy_url": fault_proxy_url})
    )
    return path


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester project: pyproject with strict markers, the providers module, a state dir."""
    for key in (
        "CHAOS_REC_STATE_DIR",
        "CHAOS_REC_DRILL_STACK",
        "CHAOS_REC_DRILL_REPORT",
        "CHAOS_REC_SEED",
        "CHAOS_REC_DRILL_SLO",
        "CHAOS_REC_DRILL_BASELINE",
    ):
        monkeypatch.delenv(key, raising=False)
    pytester.makepyprojecttoml(
        textwrap.dedent(
            """
            [tool.pytest.ini_options]
            testpaths = ["tests"]
            addopts = "--strict-markers -p no:locust -p no:randomly"
            """
        )
    )
    pytester.makepyfile(cr_providers=PROVIDERS)
    pytester.syspathinsert()
    (pytester.path / "experiments").mkdir()
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    return pytester


@pytest.fixture
def write_experiment(project: pytest.Pytester) -> Writer:
    """Write ``experiments/<name>.json`` from parts."""

    def write(
        name: str,
        *,
        method: list[Any] | None = None,
        probes: list[Any] | None = None,
        rollbacks: list[Any] | None = None,
        tags: list[str] | None = None,
        extra: dict[str, Any] | None = None,
        folder: str = "experiments",
    ) -> Path:
        exp: dict[str, Any] = {
            "title": f"{name} drill",
            "description": "plugin test",
            "tags": tags or [],
            "method": method if method is not None else [probe("noop", "value", v=1)],
        }
        if probes is not None:
            exp["steady-state-hypothesis"] = {"title": "healthy", "probes": probes}
        if rollbacks:
            exp["rollbacks"] = rollbacks
        exp.update(extra or {})
        path = project.path / folder / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(exp, indent=1))
        return path

    return write
