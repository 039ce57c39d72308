"""The command backends with real tiny shell commands in a tmp folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.backends.commands import (
    CommandFeatureData,
    CommandProcesses,
    CommandRollout,
    DataCommands,
    ProcessCommands,
    RolloutCommands,
)
from chaos_rec.backends.shell import Shell, check_placeholders, substitute
from chaos_rec.core.seams import FeatureData, Processes, Rollout
from chaos_rec.core.target import Deployment, ReplicaTarget
from chaos_rec.errors import ConfigError, FaultError

WHERE = "deployment file d.json"


def _dep(*names: str) -> Deployment:
    reps = tuple(ReplicaTarget(n, i, None, None) for i, n in enumerate(names or ("replica-0",)))
    return Deployment(source="d.json", gateway_url="http://127.0.0.1:1", toxiproxy_url=None,
                      redis_url=None, replicas=reps)  # fmt: skip


def _log(tmp_path: Path) -> Path:
    return tmp_path / "log"


def _procs(tmp_path: Path, dep: Deployment | None = None, **over: Any) -> CommandProcesses:
    log = _log(tmp_path)
    section = {
        "pid": "echo 4242",
        "kill": f"printf 'kill %s %s %s\\n' {{replica}} {{index}} {{pid}} >> {log}",
        "hang": f"printf 'hang %s\\n' {{replica}} >> {log}",
        "resume": f"printf 'resume %s\\n' {{replica}} >> {log}",
        "ready": "exit 0",
        **over,
    }
    return CommandProcesses(ProcessCommands.from_dict(section, WHERE), dep or _dep())


def test_backends_satisfy_the_seams(tmp_path: Path) -> None:
    procs: Processes = _procs(tmp_path)
    data: FeatureData = CommandFeatureData(DataCommands("true", "true", "true"))
    models: Rollout = CommandRollout(RolloutCommands("true"), _dep())
    assert procs and data and models


def test_kill_hang_resume_run_with_placeholders(tmp_path: Path) -> None:
    procs = _procs(tmp_path, _dep("replica-0", "replica-1"))
    procs.kill("replica-1")
    procs.hang("replica-0")
    procs.resume("replica:1")
    assert _log(tmp_path).read_text().splitlines() == [
        "kill replica-1 1 4242", "hang replica-0", "resume replica-1",
    ]  # fmt: skip
    assert procs.pid("replica-0") == 4242


def test_replica_name_cannot_inject(tmp_path: Path) -> None:
    evil = "a b; touch pwned"
    procs = _procs(tmp_path, _dep(evil))
    procs.hang(evil)
    assert _log(tmp_path).read_text() == f"hang {evil}\n"
    assert not (Path.cwd() / "pwned").exists() and not (tmp_path / "pwned").exists()
    assert substitute("echo {replica}", {"replica": "$(id); x"}) == "echo '$(id); x'"


def test_shell_braces_are_not_placeholders() -> None:
    check_placeholders("echo ${HOME} {replica} | awk '{print $1}'", {"replica"}, "w")
    with pytest.raises(ConfigError, match=r"^w: unknown placeholder \{pod\}"):
        check_placeholders("kubectl delete {pod}", {"replica"}, "w")


def test_pid_errors(tmp_path: Path) -> None:
    with pytest.raises(FaultError, match="printed no pid for replica-0"):
        _procs(tmp_path, pid="echo not-running").pid("replica-0")
    no_pid = _procs(tmp_path, pid=None, kill="true")
    with pytest.raises(FaultError, match=r"processes\.pid is not configured"):
        no_pid.pid("replica-0")
    no_pid.kill("replica-0")  # kill without {pid} needs no pid command


def test_failing_command_is_one_line(tmp_path: Path) -> None:
    procs = _procs(tmp_path, kill="echo first >&2; echo 'no such process' >&2; exit 3")
    with pytest.raises(FaultError) as info:
        procs.kill("replica-0")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("processes.kill exited 3 `echo first")
    assert msg.endswith(": no such process")


def test_stdout_last_line_when_stderr_is_empty(tmp_path: Path) -> None:
    procs = _procs(tmp_path, hang="printf 'a\\nERROR: replica-0 not found\\n'; exit 7")
    with pytest.raises(FaultError, match=r"exited 7 .*: ERROR: replica-0 not found$"):
        procs.hang("replica-0")


def test_timeout_kills_the_command() -> None:
    shell = Shell({}, (), 0.2)
    start = time.monotonic()
    with pytest.raises(FaultError, match=r"^data.wipe timed out after 0.2s: `sh -c 'sleep 5'`"):
        shell.check("data.wipe", "sh -c 'sleep 5'")
    assert time.monotonic() - start < 3.0


def test_wait_restored_polls_ready(tmp_path: Path) -> None:
    flag = tmp_path / "up"
    procs = _procs(tmp_path, ready=f"test -f {flag}", poll_interval_s=0.05)
    with pytest.raises(FaultError, match=r"replica-0 not ready within 0.3s \(last check: exit 1"):
        procs.wait_restored("replica-0", 0.3)
    flag.touch()
    assert procs.wait_restored("replica-0", 5.0) < 1.0


def test_wait_restored_timeout_from_spec(tmp_path: Path) -> None:
    procs = _procs(tmp_path, ready="exit 1", wait_restored_timeout_s=0.2, poll_interval_s=0.05)
    start = time.monotonic()
    with pytest.raises(FaultError, match=r"not ready within 0\.2s"):
        procs.wait_restored("replica-0", 60.0)
    assert time.monotonic() - start < 2.0


def test_data_commands(tmp_path: Path) -> None:
    log = _log(tmp_path)
    spec = DataCommands.from_dict(
        {"wipe": f"echo wiped >> {log}", "restore": "echo loading; echo 'wrote 943 users'",
         "verify": "exit 0", "size": "echo 943"},
        WHERE,
    )  # fmt: skip
    data = CommandFeatureData(spec)
    data.wipe()
    assert log.read_text() == "wiped\n"
    assert data.restore(5.0) == "wrote 943 users"
    assert data.verify(5.0) is True
    assert data.size() == 943


@pytest.mark.parametrize(("code", "result"), [(0, True), (1, False), (3, None)])
def test_verify_exit_codes(code: int, result: bool | None) -> None:
    data = CommandFeatureData(DataCommands("true", "true", f"echo checked >&2; exit {code}"))
    if result is None:
        with pytest.raises(
            FaultError, match=r"^data.verify exited 3 \(could not check\) .*: checked$"
        ):
            data.verify(5.0)
    else:
        assert data.verify(5.0) is result


def test_size_errors() -> None:
    with pytest.raises(FaultError, match=r"data\.size is not configured"):
        CommandFeatureData(DataCommands("true", "true", "true")).size()
    with pytest.raises(FaultError, match=r"data\.size printed 'lots'"):
        CommandFeatureData(DataCommands("true", "true", "true", size="echo lots")).size()


def _rollout(push: str, **over: Any) -> CommandRollout:
    section = {"push": push, "version": "echo v-{index}", **over}
    return CommandRollout(RolloutCommands.from_dict(section, WHERE), _dep("r0", "r1"))


def test_push_exit_codes(tmp_path: Path) -> None:
    bundle = tmp_path / "my bundle"
    ok = _rollout("echo pushed {bundle} to {replica}")
    assert ok.push("r1", bundle) == (True, f"pushed {bundle} to r1")
    assert ok.version("r1") == "v-1"
    refused = _rollout("echo bad checksum >&2; exit 9", refused_exit=9)
    assert refused.push("r0", bundle) == (False, "bad checksum")
    with pytest.raises(FaultError, match=r"^rollout.push exited 2 .*: boom$"):
        _rollout("echo boom; exit 2", refused_exit=9).push("r0", bundle)


def test_push_json_answer_and_reference_bundle(tmp_path: Path) -> None:
    models = _rollout("""printf '{"model_version": "7"}'""", reference_bundle=str(tmp_path / "ref"))
    assert models.push("r0", tmp_path) == (True, {"model_version": "7"})
    assert models.reference_bundle() == tmp_path / "ref"
    assert CommandRollout(RolloutCommands("true"), _dep()).version("replica-0") is None
    assert CommandRollout(RolloutCommands("true"), _dep()).reference_bundle() is None


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", "s3cr3t-tok")
    spec = RolloutCommands.from_dict(
        {"push": 'curl -H "Bearer s3cr3t-tok" {bundle}; echo "denied for $ADMIN_TOKEN" >&2; '
                 "echo $EXTRA >&2; exit 5",
         "env": {"EXTRA": "p4ss-word"}, "secret_env": ["ADMIN_TOKEN", "EXTRA"]},
        WHERE,
    )  # fmt: skip
    with pytest.raises(FaultError) as info:
        CommandRollout(spec, _dep()).push("replica-0", Path("/b"))
    msg = str(info.value)
    assert "s3cr3t-tok" not in msg and "p4ss-word" not in msg
    assert "Bearer ***" in msg and msg.endswith(": ***")
    assert "p4ss-word" not in repr(spec)


def test_env_passes_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_OUTSIDE", "outer")
    spec = DataCommands.from_dict(
        {"wipe": "true", "restore": 'echo "$FROM_OUTSIDE $MINE"', "verify": "true",
         "env": {"MINE": "inner"}},
        WHERE,
    )  # fmt: skip
    assert CommandFeatureData(spec).restore(5.0) == "outer inner"


def test_to_dict_round_trips(tmp_path: Path) -> None:
    procs = {"pid": "p {replica}", "kill": "k {pid}", "hang": "h", "resume": "r",
             "ready": "ok {index}", "wait_restored_timeout_s": 30, "timeout_s": 5,
             "env": {"A": "1"}, "secret_env": ["A"]}  # fmt: skip
    spec = ProcessCommands.from_dict(procs, WHERE)
    assert ProcessCommands.from_dict(spec.to_dict(), WHERE) == spec
    data = DataCommands.from_dict({"wipe": "w", "restore": "r", "verify": "v", "size": "s"}, WHERE)
    assert DataCommands.from_dict(data.to_dict(), WHERE) == data
    roll = RolloutCommands.from_dict(
        {"push": "p {bundle}", "version": "v", "reference_bundle": str(tmp_path)}, WHERE
    )
    assert RolloutCommands.from_dict(roll.to_dict(), WHERE) == roll
    assert roll.to_dict()["kind"] == "command"


_PROCS = {"kill": "k", "hang": "h", "resume": "r", "ready": "ok"}


@pytest.mark.parametrize(
    ("cls", "section", "message"),
    [
        (ProcessCommands, [], "processes must be an object"),
        (ProcessCommands, {**_PROCS, "kill": "kubectl delete {pod}"},
         "processes.kill: unknown placeholder {pod} (known: {index}, {replica})"),
        (ProcessCommands, {**_PROCS, "kill": "kill -9 {pid}"},
         "processes.kill: unknown placeholder {pid}"),
        (ProcessCommands, {**_PROCS, "pid": "echo {pid}"},
         "processes.pid: unknown placeholder {pid}"),
        (ProcessCommands, {k: v for k, v in _PROCS.items() if k != "ready"},
         "processes.ready: missing (a shell command)"),
        (ProcessCommands, {**_PROCS, "hang": 3}, "processes.hang: must be a non-empty string"),
        (ProcessCommands, {**_PROCS, "resume": "  "}, "processes.resume: must be a non-empty string"),
        (ProcessCommands, {**_PROCS, "restart": "x"}, "processes: unknown key 'restart'"),
        (ProcessCommands, {**_PROCS, "kind": "k8s"},
         "processes.kind: expected 'command', got 'k8s'"),
        (ProcessCommands, {**_PROCS, "timeout_s": 0}, "processes.timeout_s: must be positive"),
        (ProcessCommands, {**_PROCS, "timeout_s": True},
         "processes.timeout_s: must be a number of seconds"),
        (ProcessCommands, {**_PROCS, "wait_restored_timeout_s": "1m"},
         "processes.wait_restored_timeout_s: must be a number of seconds"),
        (ProcessCommands, {**_PROCS, "env": ["A=1"]}, "processes.env: must be an object"),
        (ProcessCommands, {**_PROCS, "env": {"A": 1}}, "processes.env.A: must be a string"),
        (ProcessCommands, {**_PROCS, "env": {"A-B": "1"}}, "processes.env: 'A-B' is not a variable"),
        (ProcessCommands, {**_PROCS, "secret_env": "TOKEN"},
         "processes.secret_env: must be a list of variable names"),
        (DataCommands, {"wipe": "w", "restore": "r {replica}", "verify": "v"},
         "data.restore: unknown placeholder {replica} (known: none)"),
        (DataCommands, {"wipe": "w", "restore": "r"}, "data.verify: missing"),
        (RolloutCommands, {"push": "p {bundel}"}, "rollout.push: unknown placeholder {bundel}"),
        (RolloutCommands, {"push": "p", "version": "v {bundle}"},
         "rollout.version: unknown placeholder {bundle}"),
        (RolloutCommands, {"push": "p", "refused_exit": 0},
         "rollout.refused_exit: must be an exit code 1..255, got 0"),
        (RolloutCommands, {"push": "p", "reference_bundle": 5},
         "rollout.reference_bundle: must be a non-empty string"),
    ],
)  # fmt: skip
def test_from_dict_refuses_bad_input(cls: Any, section: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        cls.from_dict(section, WHERE)
    msg = str(info.value)
    assert "\n" not in msg and info.value.__cause__ is None
    assert msg.startswith(f"{WHERE}: {message}")


def test_pid_placeholder_fetches_the_pid_and_shell_vars_do_not(tmp_path: Path) -> None:
    log = _log(tmp_path)
    procs = _procs(tmp_path, pid="exit 4", resume=f"echo ${{pid:-none}} >> {log}")
    procs.resume("replica-0")  # ${pid} is the shell's: the failing pid command is not run
    assert log.read_text() == "none\n"
    with pytest.raises(FaultError, match=r"^processes\.pid exited 4"):
        _procs(tmp_path, pid="exit 4").kill("replica-0")


def test_unknown_replica_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no replica 'replica-9'"):
        _procs(tmp_path).wait_restored("replica-9", 1.0)
