"""Collection of experiments as drill items: names, markers, paths, validation errors."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import Writer, probe


def test_experiments_are_collected_as_one_item_each_named_after_the_file(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment("gpu_node_loss")
    write_experiment("feature_store_slow")
    result = project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "tests/test_plain.py::test_plain",
            "experiments/feature_store_slow.json::feature_store_slow",
            "experiments/gpu_node_loss.json::gpu_node_loss",
        ]
    )
    assert result.ret == 0


def test_explicit_test_path_does_not_collect_drills(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment("gpu_node_loss")
    result = project.runpytest("tests", "--collect-only", "-q")
    assert "gpu_node_loss" not in result.stdout.str()
    result.stdout.fnmatch_lines(["tests/test_plain.py::test_plain"])


def test_tags_become_registered_markers_selectable_with_m(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment("a", tags=["gpu-node", "Feature Store", "2024"])
    write_experiment("b", tags=["redis"])
    result = project.runpytest(
        "-m", "gpu_node and feature_store and tag_2024", "--collect-only", "-q"
    )
    assert result.ret == 0, result.stdout.str()
    out = result.stdout.str()
    assert "experiments/a.json::a" in out
    assert "b.json" not in out and "test_plain" not in out
    drills = project.runpytest("-m", "drill", "--collect-only", "-q").stdout.str()
    assert "a.json::a" in drills and "b.json::b" in drills and "test_plain" not in drills


def test_keyword_selection_uses_the_file_name(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment("gpu_node_loss")
    write_experiment("redis_wipe")
    out = project.runpytest("-k", "redis", "--collect-only", "-q").stdout.str()
    assert "redis_wipe" in out and "gpu_node_loss" not in out


def test_invalid_experiment_fails_collection_with_the_validation_message(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment("ok")
    bad = write_experiment("bad")
    bad.write_text('{"title": "no description", "method": []}')
    result = project.runpytest("-m", "drill")
    result.stdout.fnmatch_lines(
        ["*ERROR collecting experiments/bad.json*", "*bad.json: invalid experiment:*"]
    )
    assert "description" in result.stdout.str()
    assert "Traceback" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_unknown_provider_function_fails_collection(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment("typo", method=[probe("p", "no_such_function")])
    result = project.runpytest("--collect-only")
    result.stdout.fnmatch_lines(["*typo.json: invalid experiment:*no_such_function*"])


def test_broken_json_fails_collection(project: pytest.Pytester) -> None:
    (project.path / "experiments" / "broken.json").write_text("{not json")
    result = project.runpytest("--collect-only")
    result.stdout.fnmatch_lines(["*broken.json: not valid JSON*"])


def test_drill_path_option_and_ini_select_other_folders(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment("elsewhere", folder="scenarios")
    out = project.runpytest("--drill-path", "scenarios", "--collect-only", "-q").stdout.str()
    assert "scenarios/elsewhere.json::elsewhere" in out
    project.makepyprojecttoml(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\ndrill_paths = ["scenarios"]\n'
        'addopts = "-p no:locust"\n'
    )
    out = project.runpytest("--collect-only", "-q").stdout.str()
    assert "scenarios/elsewhere.json::elsewhere" in out


def test_missing_drill_path_is_one_clear_error(project: pytest.Pytester) -> None:
    result = project.runpytest("--drill-path", "nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*chaos-rec: --drill-path * does not exist*"])


def test_drills_on_an_xdist_worker_are_refused_clearly(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment("gpu_node_loss")
    project.makeconftest(
        "def pytest_configure(config):\n    config.workerinput = {'workerid': 'gw0'}  # as pytest-xdist does\n"
    )
    result = project.runpytest("-m", "drill")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*drills inject faults into one shared stack and must run serially*-p no:xdist*"]
    )
    plain = project.runpytest("tests")
    plain.assert_outcomes(passed=1)
