"""Bad entries of an experiment: its extension block, its actions' and probes' arguments.

Each is one line naming what is wrong, raised before any call to the target (the deployment
file points at closed loopback ports; nothing is listening) and before the ledger records a
fault to undo.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaos_rec import actions, probes
from chaos_rec.core.run import ACTIVE
from chaos_rec.drill.experiment import load_drill
from chaos_rec.errors import ConfigError, ProbeError
from chaos_rec.settings import resolve_ctk


@pytest.fixture
def conf(tmp_path: Path) -> dict[str, Any]:
    dep = tmp_path / "dep.json"
    dep.write_text(json.dumps({
        "gateway_url": "http://127.0.0.1:9", "toxiproxy_url": "http://127.0.0.1:9",
        "replicas": [{"name": "r0", "http_url": "http://127.0.0.1:9", "link": "r0"}],
        "links": {"feature-store": {"listen": "127.0.0.1:9", "upstream": "127.0.0.1:9"}},
    }))  # fmt: skip
    ACTIVE.ledger.clear()
    return {"chaos_rec_target": str(dep), "chaos_rec_run_dir": str(tmp_path / "run")}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attributes": {"latency": -100}}, "add_toxic latency: attribute latency must be >= 0, got -100"),
        ({"attributes": {"latency": "100"}},
         "add_toxic latency: attribute latency must be an integer, got '100'"),
        ({"attributes": {"latency": 1.5}},
         "add_toxic latency: attribute latency must be an integer, got 1.5"),
        ({"attributes": {"latncy": 100}},
         "add_toxic latency: unknown attribute 'latncy' (known: latency, jitter)"),
        ({"attributes": [100]}, "add_toxic latency: attributes must be an object, got list"),
        ({"toxicity": 1.5}, "add_toxic latency: toxicity must be between 0 and 1, got 1.5"),
        ({"toxicity": "all"}, "add_toxic latency: toxicity must be a number, got 'all'"),
    ],
)  # fmt: skip
def test_a_bad_toxic_is_refused_before_the_fault_proxy_is_called(
    conf: dict[str, Any], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        actions.add_toxic("link:feature-store", "latency", configuration=conf, **kwargs)
    assert str(info.value) == message
    assert len(ACTIVE.ledger) == 0 and not (Path(conf["chaos_rec_run_dir"])).exists()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: actions.kill_replica("replica:9", configuration=c),
         "no replica 'replica:9' in the deployment (replicas: replica:0)"),
        (lambda c: actions.hang_replica("node:1", configuration=c),
         "no replica 'node:1' in the deployment (replicas: replica:0)"),
        (lambda c: actions.cut_link("link:replica-7", configuration=c),
         "no link 'replica-7' in the deployment (links: feature-store)"),
        (lambda c: actions.add_toxic("gateway", configuration=c),
         "no link 'gateway' in the deployment (links: feature-store)"),
    ],
)  # fmt: skip
def test_an_unknown_replica_or_link_is_one_line_and_injects_nothing(
    conf: dict[str, Any], call: Any, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        call(conf)
    assert str(info.value) == message
    assert len(ACTIVE.ledger) == 0


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: probes.latency_ms("p99", configuration=c), ProbeError,  # type: ignore[arg-type]
         "percentile must be a number, got 'p99'"),
        (lambda c: probes.latency_ms(150, configuration=c), ProbeError,
         "percentile must be within (0, 100], got 150"),
        (lambda c: probes.availability("ten", configuration=c), ProbeError,  # type: ignore[arg-type]
         "window_s must be a number, got 'ten'"),
        (lambda c: probes.availability(0, configuration=c), ProbeError,
         "window_s must be within [1, 3600], got 0"),
        (lambda c: probes.prometheus_query("up", aggregate="avg", configuration=c), ConfigError,
         "aggregate must be max, min or sum, got 'avg'"),
    ],
)  # fmt: skip
def test_bad_probe_arguments_are_one_line(
    conf: dict[str, Any], call: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        call(conf)
    assert str(info.value) == message


def _experiment(ours: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": "t", "description": "d",
        "method": [{"type": "action", "name": "a", "provider": {
            "type": "python", "module": "chaos_rec.actions", "func": "mark_phase",
            "arguments": {"phase": "fault"}}}],
        "extensions": [{"name": "chaos_rec", **ours}],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("ours", "message"),
    [
        ({"slos": {"fault": {"p99_ms": 400}}},
         "x.json extensions.chaos_rec: unknown key 'slos' (known: optional, requires, slo)"),
        ({"require": ["processes"]},
         "x.json extensions.chaos_rec: unknown key 'require' (known: optional, requires, slo)"),
        ({"slo": [1]}, "extension chaos_rec: 'slo' must be an object"),
        ({"requires": "processes"},
         "x.json extensions.chaos_rec.requires: must be a list of capability names, got 'processes'"),
        ({"optional": ["gpus"]}, "x.json extensions.chaos_rec.optional: unknown capability 'gpus'"),
    ],
)  # fmt: skip
def test_a_bad_extension_block_fails_loading_in_one_line(
    tmp_path: Path, ours: dict[str, Any], message: str
) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps(_experiment(ours)))
    with pytest.raises(ConfigError) as info:
        load_drill(path)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_the_control_checks_the_extension_block_before_it_holds_the_reference_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaoslib.exceptions import InterruptExecution

    from chaos_rec.controls import before_experiment_control

    def no_lease(cfg: object) -> None:
        raise AssertionError("the control went on to hold (and start) the reference stack")

    monkeypatch.setattr("chaos_rec.controls._lease", no_lease)
    state = tmp_path / "state"
    conf = {"chaos_rec_state_dir": str(state)}
    with pytest.raises(InterruptExecution) as info:
        before_experiment_control(_experiment({"slos": {}}), configuration=conf)
    assert str(info.value) == (
        "chaos-rec: experiment extensions.chaos_rec: unknown key 'slos' "
        "(known: optional, requires, slo)"
    )
    assert not state.exists()  # no lease, no stack, no run dir


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{nope", "not valid JSON: "),
        ("[1]", "an experiment is a JSON object, got list"),
        ('{"title": "t", "description": "d", "method": [], "tags": "slow"}',
         "invalid experiment: "),
    ],
)  # fmt: skip
def test_an_experiment_file_that_is_no_experiment_is_one_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_drill(path)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


@pytest.mark.parametrize("key", ["chaos_rec_state_dir", "chaos_rec_run_dir"])
@pytest.mark.parametrize("value", [5, ["runs"], {"dir": "x"}])
def test_a_ctk_path_that_is_not_a_string_is_one_line(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_ctk({key: value}, env={})
    assert str(info.value) == f"configuration {key} must be a path (a string), got {value!r}"


class _RecordingLinks:
    """A Links seam that records every call (a refused toxic must make none)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return {}

        return call


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "lag"}, "toxic on feature-store: unknown toxic type 'lag': use one of latency, "),
        ({"type": "latency", "latency": -5}, "toxic on feature-store latency: attribute latency must be >= 0, got -5"),
        ({"type": "latency", "latncy": 5},
         "toxic on feature-store latency: unknown attribute 'latncy' (known: latency, jitter)"),
        ({"type": "latency", "toxicity": 2}, "toxic on feature-store latency: toxicity must be between 0 and 1, got 2"),
        ({"type": "latency", "stream": "both"},
         "toxic on feature-store: stream must be upstream or downstream, got 'both'"),
    ],
)  # fmt: skip
def test_a_python_drills_bad_toxic_is_refused_before_the_fault_proxy_is_called(
    kwargs: dict[str, Any], message: str
) -> None:
    from chaos_rec.drill.faults import FaultProxy

    links = _RecordingLinks()
    with (
        pytest.raises(ConfigError) as info,
        FaultProxy(links).toxic("feature-store", **kwargs),  # type: ignore[arg-type]
    ):
        pass
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert links.calls == []
