"""A bad value at any pytest door (option, environment, ini key) is one usage-error line.

pytest stops before collecting: no drill and no plain test runs, no report folder is written.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.plugin.conftest import Writer


@pytest.mark.parametrize(
    ("args", "env", "ini", "line"),
    [
        (["--drill-seed=-3"], {}, "", "chaos-rec: --drill-seed must be within [0, 2147483648], got '-3'"),
        (["--drill-seed", "x"], {}, "", "chaos-rec: --drill-seed must be an integer, got 'x'"),
        ([], {"CHAOS_REC_SEED": "1.5"}, "", "chaos-rec: CHAOS_REC_SEED must be an integer, got '1.5'"),
        ([], {"CHAOS_REC_DRILL_DRY": "maybe"}, "",
         "chaos-rec: CHAOS_REC_DRILL_DRY must be true or false, got 'maybe'"),
        ([], {}, 'drill_load_rps = "-3"',
         "chaos-rec: drill_load_rps must be within [0.1, 10000], got '-3'"),
        ([], {}, 'drill_load_users = "many"',
         "chaos-rec: drill_load_users must be an integer, got 'many'"),
    ],
)  # fmt: skip
def test_a_bad_setting_stops_the_session_with_one_usage_error_line(
    project: pytest.Pytester,
    write_experiment: Writer,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    ini: str,
    line: str,
) -> None:
    write_experiment("gpu_node_loss")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if ini:
        project.makepyprojecttoml(
            textwrap.dedent(
                f"""
                [tool.pytest.ini_options]
                testpaths = ["tests"]
                addopts = "-p no:locust -p no:randomly"
                {ini}
                """
            )
        )
    result = project.runpytest("--drill-report", "out", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [e for e in result.stderr.lines if e.strip()]
    assert errors == [f"ERROR: {line}"], result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert not (project.path / "out").exists()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--drill-report", "afile"], "chaos-rec: --drill-report: {p}/afile is a file, not a folder"),
        (["--drill-stack", "afile"],
         "chaos-rec: --drill-stack: deployment file {p}/afile is not JSON: Expecting value: "
         "line 1 column 1 (char 0)"),
        (["--drill-stack", "typo.json"],
         "chaos-rec: --drill-stack: deployment file {p}/typo.json: unknown key 'gatway_url'"),
        (["--drill-ctk-settings", "nope.yaml"],
         "chaos-rec: --drill-ctk-settings: Chaos Toolkit settings file not found: {p}/nope.yaml"),
        (["--drill-ctk-settings", "bad.yaml"],
         "chaos-rec: --drill-ctk-settings: Chaos Toolkit settings file {p}/bad.yaml is not valid "
         "YAML: expected the node content, but found '<stream end>' (line 2)"),
    ],
)  # fmt: skip
def test_a_bad_file_option_stops_the_session_before_any_drill(
    project: pytest.Pytester, write_experiment: Writer, args: list[str], line: str
) -> None:
    write_experiment("gpu_node_loss")
    (project.path / "afile").write_text("plain text\n")
    (project.path / "typo.json").write_text('{"gatway_url": "http://127.0.0.1:9"}')
    (project.path / "bad.yaml").write_text("controls: [\n")
    result = project.runpytest("-m", "drill", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [e for e in result.stderr.lines if e.strip()]
    assert errors == [f"ERROR: {line.format(p=project.path)}"], result.stderr.str()
    assert (project.path / "afile").read_text() == "plain text\n"
    assert not (project.path / ".chaos-rec" / "runs").exists()  # no drill ran
