"""The suite's guard (tests.support.leftovers): a test that leaves a process behind fails the run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.leftovers import RUN_MARK
from tests.support.procs import pids_mentioning

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester project whose session owns its own run id (as a top-level run would)."""
    monkeypatch.delenv(RUN_MARK, raising=False)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    return pytester


def test_a_process_left_running_fails_the_session_and_is_killed(inner: pytest.Pytester) -> None:
    token = f"leak-{inner.path.name}"
    inner.makepyfile(
        test_leak=textwrap.dedent(
            f"""
            import subprocess, sys
            def test_leaks():
                subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "{token}"],
                                 start_new_session=True)
            """
        )
    )
    result = inner.runpytest_subprocess("-p", "tests.support.leftovers", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 passed*"])
    result.stdout.fnmatch_lines(["*tests left 1 process(es) running (now killed):*", f"*{token}*"])
    assert pids_mentioning(token) == []


def test_a_failing_test_still_has_its_processes_stopped(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        test_fails=textwrap.dedent(
            """
            import subprocess, sys
            def test_fails(tmp_path):
                subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)",
                                  str(tmp_path)], start_new_session=True)
                assert False, "the test failed"
            """
        )
    )
    result = inner.runpytest_subprocess("-p", "tests.support.leftovers", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "tests left" not in result.stdout.str()  # the per-test finalizer stopped it already
    assert pids_mentioning(str(inner.path)) == []


def test_multiprocessing_helpers_of_the_session_itself_are_not_leftovers(
    inner: pytest.Pytester,
) -> None:
    inner.makepyfile(
        test_mp=textwrap.dedent(
            """
            import multiprocessing
            def test_uses_spawn():
                ctx = multiprocessing.get_context("spawn")
                ctx.Lock()  # starts the resource tracker, which lives as long as this process
            """
        )
    )
    result = inner.runpytest_subprocess("-p", "tests.support.leftovers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
