"""A Ctrl-C the CLIs handle ends the process with status 130, wherever the SIGINT landed.

CPython flags a KeyboardInterrupt that ends code run from source text (``exec``/``eval`` of a
string: namedtuple's ``__new__``, a ``.pth`` line) and ``python -m`` then kills itself with
SIGINT (status -2) after ``main`` returned 130 — found by clean-clone series s6 run 3, where
``stack up`` printed "interrupted" and ended by signal. Only a ``-m`` run shows it: a script
or ``-c`` exits through ``Py_Exit`` on SystemExit and never reads the flag.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import default_sigint

CHILD = """
import argparse, sys
from chaos_rec import cli
from chaos_rec.toxiproxy import cli as proxy_cli

def interrupted_in_source_text(*_):
    exec("raise KeyboardInterrupt")  # as a SIGINT landing inside namedtuple's eval would
    return 0

if sys.argv[1] == "chaos-rec":
    parser = argparse.ArgumentParser()
    parser.set_defaults(func=interrupted_in_source_text)
    cli.build_parser = lambda: parser
    sys.exit(cli.main([]))
proxy_cli._run = interrupted_in_source_text
sys.exit(proxy_cli.main([]))
"""


@pytest.mark.parametrize("command", ["chaos-rec", "fault-proxy"])
def test_an_interrupt_inside_exec_of_source_still_exits_130(tmp_path: Path, command: str) -> None:
    (tmp_path / "interrupted_child.py").write_text(CHILD)
    proc = subprocess.run(
        [sys.executable, "-m", "interrupted_child", command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=default_sigint,
    )
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
