"""Test support for the stock Chaos Toolkit CLI: run ``chaos`` offline, build python activities."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.offline import offline_env

CHAOS = Path(sys.executable).with_name("chaos")  # the CLI of this venv


def chaos(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    """``chaos --no-version-check ARGS`` (the network is closed) in ``cwd``, output captured."""
    return subprocess.run(
        [str(CHAOS), "--no-version-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=offline_env(**(env or {})),
        cwd=cwd,
        check=False,
    )


def run_experiment(
    experiment: Mapping[str, Any], cwd: Path, env: Mapping[str, str] | None = None
) -> tuple[int, dict[str, Any], str]:
    """``chaos run`` of an experiment written to ``cwd``: exit code, journal and output."""
    path = cwd / "exp.json"
    path.write_text(json.dumps(experiment))
    journal = cwd / "journal.json"
    res = chaos("run", "--journal-path", str(journal), str(path), cwd=cwd, env=env)
    return res.returncode, json.loads(journal.read_text()), res.stderr + res.stdout


def py_activity(kind: str, name: str, module: str, func: str, **arguments: Any) -> dict[str, Any]:
    """A Chaos Toolkit probe or action with a python provider."""
    provider: dict[str, Any] = {"type": "python", "module": module, "func": func}
    if arguments:
        provider["arguments"] = arguments
    return {"type": kind, "name": name, "provider": provider}
