"""chaos_rec.settings: each door's precedence, one bad value per type, and one set of defaults."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.drill.config import DrillConfig, from_pytest
from chaos_rec.errors import ConfigError
from chaos_rec.extconfig import ExtConfig
from chaos_rec.load.runner import LoadRunner
from chaos_rec.settings import (
    SETTINGS,
    TABLE,
    default,
    resolve_ctk,
    resolve_pytest,
    resolve_state_dir,
)


class FakeConfig:
    """The part of pytest.Config the pytest door reads (options by dest, ini keys)."""

    def __init__(
        self, root: Path, here: Path | None = None, options: dict[str, Any] | None = None,
        ini: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        self.rootpath = root
        self.invocation_params = type("Params", (), {"dir": here or root})()
        self.options = {"verbose": 0, **(options or {})}
        self.ini = ini or {}

    def getoption(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    def getini(self, name: str) -> Any:
        return self.ini.get(name, [] if name == "drill_paths" else "")


def _pytest(tmp_path: Path, env: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    here = tmp_path / "here"
    return resolve_pytest(
        FakeConfig(tmp_path, here, **kw), here=here, root=tmp_path, env=env or {}
    ).values


# ---- the pytest door: option > env > ini > default ----------------------------------------


@pytest.mark.parametrize(
    ("options", "env", "ini", "seed"),
    [
        ({"drill_seed": "5"}, {"CHAOS_REC_SEED": "6"}, {"drill_seed": "7"}, 5),
        ({}, {"CHAOS_REC_SEED": "6"}, {"drill_seed": "7"}, 6),
        ({}, {}, {"drill_seed": "7"}, 7),
        ({}, {}, {}, 1234),
        ({"drill_seed": ""}, {"CHAOS_REC_SEED": ""}, {"drill_seed": ""}, 1234),
    ],
)
def test_pytest_option_beats_env_beats_ini_beats_default(
    tmp_path: Path, options: dict[str, str], env: dict[str, str], ini: dict[str, str], seed: int
) -> None:
    assert _pytest(tmp_path, env, options=options, ini=ini)["seed"] == seed


def test_pytest_paths_from_option_or_env_are_relative_to_here_ini_and_defaults_to_root(
    tmp_path: Path,
) -> None:
    here = tmp_path / "here"
    from_option = _pytest(tmp_path, options={"drill_report": "r", "drill_paths": ["a", "b"]})
    assert from_option["report_dir"] == here / "r"
    assert from_option["paths"] == (here / "a", here / "b")
    assert _pytest(tmp_path, {"CHAOS_REC_DRILL_REPORT": "r"})["report_dir"] == here / "r"
    from_ini = _pytest(tmp_path, ini={"drill_report": "r", "drill_paths": ["x"]})
    assert from_ini["report_dir"] == tmp_path / "r" and from_ini["paths"] == (tmp_path / "x",)
    plain = _pytest(tmp_path)
    assert plain["report_dir"] is None and plain["paths"] == (tmp_path / "experiments",)


def test_pytest_state_dir_env_beats_ini_beats_default(tmp_path: Path) -> None:
    env = {"CHAOS_REC_STATE_DIR": str(tmp_path / "env")}
    ini = {"drill_state_dir": "from-ini"}
    assert _pytest(tmp_path, env, ini=ini)["state_dir"] == tmp_path / "env"
    assert _pytest(tmp_path, ini=ini)["state_dir"] == tmp_path / "from-ini"
    assert _pytest(tmp_path)["state_dir"] == tmp_path / ".chaos-rec"


def test_pytest_dry_from_the_flag_or_the_environment(tmp_path: Path) -> None:
    assert _pytest(tmp_path)["dry"] is False
    assert _pytest(tmp_path, options={"drill_dry": True})["dry"] is True
    # an option not given (store_true's False) leaves the environment in force
    assert _pytest(tmp_path, {"CHAOS_REC_DRILL_DRY": "1"}, options={"drill_dry": False})["dry"]
    assert _pytest(tmp_path, {"CHAOS_REC_DRILL_DRY": "0"})["dry"] is False


def test_pytest_target_is_reference_or_an_existing_file(tmp_path: Path) -> None:
    assert _pytest(tmp_path)["target"] == "reference"
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "dep.json").write_text("{}")
    got = _pytest(tmp_path, options={"drill_stack": "dep.json"})["target"]
    assert got == str(tmp_path / "here" / "dep.json")
    with pytest.raises(ConfigError, match=r"^--drill-stack: no such deployment file: nope\.json"):
        _pytest(tmp_path, options={"drill_stack": "nope.json"})
    with pytest.raises(ConfigError, match=r"^CHAOS_REC_DRILL_STACK: no such deployment file"):
        _pytest(tmp_path, {"CHAOS_REC_DRILL_STACK": "nope.json"})


@pytest.mark.parametrize(
    ("options", "env", "ini", "message"),
    [
        ({"drill_seed": "x"}, {}, {}, "--drill-seed must be an integer, got 'x'"),
        ({}, {"CHAOS_REC_SEED": "1.5"}, {}, "CHAOS_REC_SEED must be an integer, got '1.5'"),
        ({}, {"CHAOS_REC_SEED": "-1"}, {}, "CHAOS_REC_SEED must be within [0, 2147483648]"),
        ({}, {}, {"drill_load_rps": "fast"}, "drill_load_rps must be a number, got 'fast'"),
        ({}, {}, {"drill_load_rps": "0"}, "drill_load_rps must be within [0.1, 10000]"),
        ({}, {}, {"drill_load_users": "0"}, "drill_load_users must be within [1, 1000]"),
        ({}, {}, {"drill_baseline_tolerance": "10"},
         "drill_baseline_tolerance must be within [0, 10), got '10'"),
        ({}, {"CHAOS_REC_DRILL_DRY": "maybe"}, {}, "CHAOS_REC_DRILL_DRY must be true or false"),
    ],
)  # fmt: skip
def test_pytest_bad_value_is_one_line_naming_it_as_spelled(
    tmp_path: Path, options: dict[str, str], env: dict[str, str], ini: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _pytest(tmp_path, env, options=options, ini=ini)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_from_pytest_builds_drill_config_and_checks_the_baseline(tmp_path: Path) -> None:
    config = FakeConfig(tmp_path, options={"drill_seed": "9"}, ini={"drill_load_users": "3"})
    cfg = from_pytest(config, env={"CHAOS_REC_DRILL_REPORT": "out"})  # type: ignore[arg-type]
    assert (cfg.seed, cfg.load_users, cfg.load_rps) == (9, 3, 20.0)
    assert cfg.report_dir == tmp_path / "out" and cfg.stack == "reference"
    assert cfg.state_dir == tmp_path / ".chaos-rec" and cfg.tolerance == 0.10
    bad = FakeConfig(tmp_path, options={"drill_baseline": "base"})
    with pytest.raises(ConfigError, match=r"^--drill-baseline: .* holds no summary\.json"):
        from_pytest(bad, env={})  # type: ignore[arg-type]


# ---- the Chaos Toolkit door: configuration > env > default --------------------------------


def test_ctk_configuration_beats_env_beats_default_for_state_and_run_dir(tmp_path: Path) -> None:
    env = {"CHAOS_REC_STATE_DIR": str(tmp_path / "env"), "CHAOS_REC_RUN_DIR": str(tmp_path / "r")}
    conf = {"chaos_rec_state_dir": str(tmp_path / "conf")}
    got = resolve_ctk(conf, env=env)
    assert got["state_dir"] == tmp_path / "conf" and got["run_dir"] == tmp_path / "r"
    assert resolve_ctk({"chaos_rec_state_dir": ""}, env=env)["state_dir"] == tmp_path / "env"
    none = resolve_ctk({}, env={})
    assert none["state_dir"] is None and none["run_dir"] is None  # the stack's default applies


def test_ctk_reads_no_other_environment_variable() -> None:
    env = {"CHAOS_REC_SEED": "7", "CHAOS_REC_DRILL_STACK": "nope.json"}
    got = resolve_ctk({}, env=env)
    assert got["seed"] == 1234 and got["target"] == "reference"
    assert resolve_ctk({"chaos_rec_seed": 3}, env=env)["seed"] == 3


def test_ctk_blank_keys_are_unset_and_a_null_floor_turns_the_safeguard_off() -> None:
    got = resolve_ctk({"chaos_rec_load_rps": None, "chaos_rec_gateway_url": ""}, env={})
    assert got["load_rps"] == 20.0 and got["gateway_url"] is None
    assert resolve_ctk({}, env={})["safeguard_availability"] == 0.5
    off = resolve_ctk({"chaos_rec_safeguard_availability": None}, env={})
    assert off["safeguard_availability"] is None
    assert resolve_ctk({"chaos_rec_load": False}, env={})["load"] is False


def test_fail_fast_is_off_by_default_and_set_by_key_or_environment() -> None:
    assert resolve_ctk({}, env={})["fail_fast"] is False
    assert resolve_ctk({"chaos_rec_fail_fast": True}, env={})["fail_fast"] is True
    assert resolve_ctk({}, env={"CHAOS_REC_FAIL_FAST": "1"})["fail_fast"] is True
    on = {"CHAOS_REC_FAIL_FAST": "1"}
    assert resolve_ctk({"chaos_rec_fail_fast": False}, env=on)["fail_fast"] is False


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ({"chaos_rec_seed": 1.5}, "configuration chaos_rec_seed must be an integer, got 1.5"),
        ({"chaos_rec_seed": True}, "configuration chaos_rec_seed must be an integer, got True"),
        ({"chaos_rec_timeout_s": "x"}, "configuration chaos_rec_timeout_s must be a number"),
        ({"chaos_rec_timeout_s": 0}, "configuration chaos_rec_timeout_s must be within [0.1, 120]"),
        ({"chaos_rec_safeguard_availability": 2},
         "configuration chaos_rec_safeguard_availability must be within [0, 1], got 2"),
        ({"chaos_rec_load": "maybe"}, "configuration chaos_rec_load must be true or false"),
        ({"chaos_rec_toxiproxy_url": "x:1"},
         "configuration chaos_rec_toxiproxy_url must be an http:// URL, got 'x:1'"),
        ({"chaos_rec_target": "/nope.json"},
         "configuration chaos_rec_target: no such deployment file: /nope.json"),
        ({"chaos_rec_admin_token": "t"}, "unknown configuration key 'chaos_rec_admin_token'"),
    ],
)  # fmt: skip
def test_ctk_bad_value_is_one_line_naming_the_key(
    configuration: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_ctk(configuration, env={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_ctk_env_path_is_expanded_and_absolute() -> None:
    got = resolve_ctk({}, env={"CHAOS_REC_RUN_DIR": "~/x"})
    assert got["run_dir"] == Path("~/x").expanduser().absolute()


def test_ctk_secret_at_top_level_or_in_a_scope() -> None:
    assert resolve_ctk({}, {"chaos_rec_admin_token": "a"}, env={})["admin_token"] == "a"
    assert resolve_ctk({}, {"s": {"chaos_rec_admin_token": "b"}}, env={})["admin_token"] == "b"
    assert resolve_ctk({}, None, env={})["admin_token"] is None


def test_stack_state_dir_is_explicit_then_env_then_default(tmp_path: Path) -> None:
    env = {"CHAOS_REC_STATE_DIR": str(tmp_path / "env")}
    assert resolve_state_dir(tmp_path / "x", env) == tmp_path / "x"
    assert resolve_state_dir(None, env) == tmp_path / "env"
    assert resolve_state_dir(None, {}) == Path.cwd() / ".chaos-rec"


# ---- one set of defaults -------------------------------------------------------------------


def test_both_doors_and_every_config_class_give_the_same_defaults(tmp_path: Path) -> None:
    pytest_door = resolve_pytest(FakeConfig(tmp_path), here=tmp_path, root=tmp_path, env={})
    ctk_door = resolve_ctk({}, env={})
    shared = [s.name for s in TABLE if s.in_pytest and s.ctk is not None]
    assert set(shared) == {
        "target", "seed", "state_dir", "load_rps", "load_users", "load_workers", "fail_fast"
    }  # fmt: skip
    for name in ("target", "seed", "load_rps", "load_users", "fail_fast"):
        assert pytest_door.values[name] == ctk_door[name] == default(name), name
    assert (default("seed"), default("load_rps"), default("load_users")) == (1234, 20.0, 8)
    # the state dir: rootdir/.chaos-rec for pytest, cwd/.chaos-rec (via the stack) for CTK
    assert pytest_door.values["state_dir"] == tmp_path / default("state_dir")
    assert resolve_state_dir(ctk_door["state_dir"], {}) == Path.cwd() / default("state_dir")
    # the dataclass defaults are the table's too
    assert ExtConfig.from_ctk({}, environ={}) == ExtConfig()
    drill = DrillConfig(rootdir=tmp_path, paths=())
    assert (drill.seed, drill.load_rps, drill.load_users, drill.stack, drill.tolerance) == (
        1234, 20.0, 8, "reference", 0.10,
    )  # fmt: skip
    runner = inspect.signature(LoadRunner).parameters
    assert runner["rps"].default == 20.0 and runner["users"].default == 8
    assert runner["seed"].default == 1234 and runner["timeout_s"].default == 5.0


def test_every_ctk_setting_is_an_ext_config_field() -> None:
    fields = {f.name for f in dataclasses.fields(ExtConfig)}
    assert fields == {s.name for s in TABLE if s.ctk is not None}


def test_every_pytest_setting_reaches_drill_config() -> None:
    fields = {f.name for f in dataclasses.fields(DrillConfig)}
    names = {"stack" if s.name == "target" else s.name for s in TABLE if s.in_pytest}
    assert names <= fields


def test_plugin_registers_exactly_the_table_with_no_second_default() -> None:
    from chaos_rec import plugin

    options: list[tuple[str, dict[str, Any]]] = []
    inis: list[tuple[str, Any]] = []

    class Group:
        def addoption(self, name: str, **kw: Any) -> None:
            options.append((name, kw))

    class Parser:
        def getgroup(self, *args: Any) -> Group:
            return Group()

        def addini(self, name: str, help: str, type: Any = None, default: Any = None) -> None:
            inis.append((name, default))

    plugin.pytest_addoption(Parser())  # type: ignore[arg-type]
    assert [n for n, _ in options] == [s.option for s in TABLE if s.option]
    assert {n: kw["dest"] for n, kw in options} == {
        "--drill-path": "drill_paths", "--drill-stack": "drill_stack",
        "--drill-report": "drill_report", "--drill-seed": "drill_seed",
        "--drill-dry": "drill_dry", "--drill-slo": "drill_slo",
        "--drill-baseline": "drill_baseline", "--drill-fail-fast": "drill_fail_fast",
        "--drill-ctk-settings": "drill_ctk_settings",
    }  # fmt: skip
    assert [n for n, _ in inis] == [s.ini for s in TABLE if s.ini]
    assert all(d in ("", []) for _, d in inis)  # defaults live in chaos_rec.settings only
    assert SETTINGS["seed"].dest == "drill_seed"
