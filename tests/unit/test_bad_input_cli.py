"""Bad command lines: one line on stderr, a non-zero exit, and nothing written or started.

Every case here fails before anything is started: the stack cases guard it by making the
stack's pre-flight (the first step of starting one) fail the test if it is ever reached.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos_rec.cli import main
from chaos_rec.toxiproxy import cli as toxiproxy_cli


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


@pytest.fixture(autouse=True)
def _no_stack_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(config: object) -> None:
        raise AssertionError("a bad command line reached the stack's start")

    monkeypatch.setattr("chaos_rec.stack.api._preflight", refuse)


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["explode"], 2, "chaos-rec: error: argument COMMAND: invalid choice: 'explode'"),
        (["stack", "up", "--replicas", "abc"], 2,
         "chaos-rec stack up: error: argument --replicas: invalid int value: 'abc' (see --help)"),
        (["stack", "up", "--bogus"], 2, "chaos-rec: error: unrecognized arguments: --bogus"),
        (["stack", "up", "--replicas", "-1"], 1, "chaos-rec: error: replicas must be in 0..10, got -1"),
        (["stack", "up", "--base-port", "-5"], 1,
         "chaos-rec: error: base_port must be in 1024..65235, got -5"),
        (["stack", "up", "--toxiproxy-port", "99999"], 1,
         "chaos-rec: error: toxiproxy_port must be in 1..65535, got 99999"),
        (["stack", "up", "--toxiproxy-url", "localhost:8474"], 1,
         "chaos-rec: error: toxiproxy_url must be an http(s) URL, got 'localhost:8474'"),
        (["stack", "up", "--config", "{tmp}/missing.toml"], 1,
         "chaos-rec: error: cannot read config file {tmp}/missing.toml: No such file or directory"),
        (["stack", "up", "--config", "{tmp}/bad.toml"], 1, "chaos-rec: error: bad config file"),
        (["stack", "up", "--config", "{tmp}/typo.toml"], 1,
         "chaos-rec: error: unknown stack config key(s): replica"),
        (["stack", "up", "--config", "{tmp}/half.toml"], 1,
         "chaos-rec: error: stack config replicas: bad value 1.5 (expected int)"),
        (["stack", "up", "--config", "{tmp}/nan.toml"], 1,
         "chaos-rec: error: stack config ready_timeout_s: bad value nan (expected float)"),
    ],
)  # fmt: skip
def test_stack_up_refuses_bad_input_in_one_line_and_writes_no_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, line: str
) -> None:
    (tmp_path / "bad.toml").write_text("replicas = [oops\n")
    (tmp_path / "typo.toml").write_text("replica = 1\n")
    (tmp_path / "half.toml").write_text("replicas = 1.5\n")
    (tmp_path / "nan.toml").write_text("ready_timeout_s = nan\n")
    state = tmp_path / "state"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if argv[:2] == ["stack", "up"]:
        argv += ["--state-dir", str(state)]
    got, _, err = _run(argv, capsys)
    assert got == code
    assert len(err) == 1 and err[0].startswith(line.replace("{tmp}", str(tmp_path))), err
    assert not state.exists()


def test_a_state_dir_that_is_a_file_is_one_line_for_every_stack_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "plain-file"
    file.write_text("not a folder")
    wanted = f"chaos-rec: error: cannot read {file}/stack.json: Not a directory"
    for action in (
        ["up", "--replicas", "0", "--no-gateway", "--no-toxiproxy"],
        ["down"],
        ["status"],
    ):
        got, _, err = _run(["stack", *action, "--state-dir", str(file)], capsys)
        assert (got, err) == (1, [wanted])
    got, _, err = _run(["halt", "--state-dir", str(file)], capsys)
    assert (got, err) == (1, [f"chaos-rec: error: state dir {file} is not a folder"])
    assert file.read_text() == "not a folder"


def test_stack_status_without_a_stack_exits_3_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    got, out, err = _run(["stack", "status", "--state-dir", str(tmp_path / "none")], capsys)
    assert (got, err) == (3, [])
    assert out.strip().splitlines() == [
        f"stack not running: no stack state at {tmp_path / 'none'}/stack.json "
        "(run `chaos-rec stack up`)"
    ]
    got, out, _ = _run(["stack", "status", "--json", "--state-dir", str(tmp_path / "n")], capsys)
    assert got == 3 and json.loads(out)["running"] is False


def _report(folder: Path, summary: object) -> Path:
    folder.mkdir()
    (folder / "summary.json").write_text(
        summary if isinstance(summary, str) else json.dumps(summary)
    )
    return folder


@pytest.mark.parametrize(
    ("summary", "extra", "line"),
    [
        (None, [], "no drill report in {dir}: cannot read summary.json"),
        ("{bad", [], "{dir}/summary.json is not JSON: "),
        ({"runs": []}, [], "{dir}/summary.json has no 'drills' list"),
        ({"drills": [1]}, [], "{dir}/summary.json: drills[0] is not a drill record"),
        ({"drills": [{"name": "x"}]}, [], "{dir}/summary.json: drills[0] is not a drill record"),
        ({"drills": []}, ["--tolerance", "-1"], "--tolerance must be within [0, 10), got -1.0"),
        ({"drills": []}, ["--tolerance", "nan"], "--tolerance must be within [0, 10), got nan"),
        ({"drills": []}, ["--baseline", "{tmp}/nope"], "no drill report in {tmp}/nope: cannot"),
        ({"drills": []}, ["--side-by-side", "old", "{tmp}/nope"], "no drill report in {tmp}/nope"),
    ],
)
def test_report_refuses_a_bad_folder_or_option_and_writes_no_html(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    summary: object,
    extra: list[str],
    line: str,
) -> None:
    folder = tmp_path / "r"
    if summary is None:
        folder.mkdir()
    else:
        _report(folder, summary)
    argv = ["report", str(folder), *(a.replace("{tmp}", str(tmp_path)) for a in extra)]
    got, _, err = _run(argv, capsys)
    want = "chaos-rec: error: " + line.replace("{dir}", str(folder)).replace("{tmp}", str(tmp_path))
    assert got == 1 and len(err) == 1 and err[0].startswith(want), err
    assert not (folder / "report.html").exists()


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (None, "cannot read deployment file {f}: No such file or directory"),
        ("{nope", "deployment file {f} is not JSON: "),
        ("[1]", "deployment file {f} must hold a JSON object"),
        ('{"gateway_url": "http://127.0.0.1:1", "toxiproxy": "x"}',
         "deployment file {f}: unknown key 'toxiproxy'"),
    ],
)  # fmt: skip
def test_halt_with_a_bad_deployment_file_is_one_line_and_undoes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, line: str
) -> None:
    dep = tmp_path / "dep.json"
    if content is not None:
        dep.write_text(content)
    state = tmp_path / "state"
    got, out, err = _run(["halt", "--drill-stack", str(dep), "--state-dir", str(state)], capsys)
    assert got == 1 and out == ""
    assert len(err) == 1 and err[0].startswith("chaos-rec: error: " + line.format(f=dep)), err
    assert not state.exists()


def test_the_fault_proxy_command_lines_refuse_bad_options_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    got, _, err = _run(["toxiproxy", "--port", "70000"], capsys)
    assert (got, err) == (1, ["chaos-rec: error: --port must be 0..65535, got 70000"])
    got, _, err = _run(["toxiproxy", "--loop", "fast"], capsys)
    assert got == 2 and len(err) == 1 and "argument --loop: invalid choice: 'fast'" in err[0]
    with pytest.raises(SystemExit) as exc:
        toxiproxy_cli.main(["--port", "abc"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "python -m chaos_rec.toxiproxy: error: argument --port: invalid int value: 'abc' "
        "(see --help)"
    ]
