"""Pytest plugin of the suite: no test leaves a process behind, also when it fails.

Every process the session starts carries ``CHAOS_REC_TEST_RUN=<id>`` in its environment
(children inherit it). After each test, stacks whose state dir lies in the test's tmp_path (or
pytester dir) are stopped and whatever still names that path is killed; at the end of the
session, any process still carrying the id is killed and the session FAILS, naming it.
Loaded by ``tests/conftest.py``; a nested session (one that finds the id set) checks nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import describe, kill_all, pids_with_env, stop_stacks_under, wait_gone

RUN_MARK = "CHAOS_REC_TEST_RUN"
_OWNED: list[str] = []  # the id, when this session set it (a nested session does not)


def pytest_configure(config: pytest.Config) -> None:
    if RUN_MARK not in os.environ:
        os.environ[RUN_MARK] = uuid.uuid4().hex
        _OWNED.append(os.environ[RUN_MARK])


@pytest.hookimpl(trylast=True)  # after the drill plugin has stopped the stack it started
def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _OWNED:
        return
    left = wait_gone(lambda: pids_with_env(RUN_MARK, _OWNED[0]), 10.0)
    if not left:
        return
    names = [describe(pid) for pid in left]
    kill_all(left)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"tests left {len(left)} process(es) running (now killed):", *names]
    if reporter is not None:
        reporter.write_line("\n".join(lines), red=True, bold=True)
    else:  # pragma: no cover - without a terminal
        print("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _stop_what_the_test_started(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test with a tmp_path or pytester dir: stop stacks in it, kill what names it."""
    yield
    pytester = request.node.funcargs.get("pytester")
    for tmp in (request.node.funcargs.get("tmp_path"), getattr(pytester, "path", None)):
        if isinstance(tmp, Path) and tmp.exists():
            stop_stacks_under(tmp)
