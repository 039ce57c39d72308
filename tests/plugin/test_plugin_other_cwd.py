"""Drills named by absolute path run from any working directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_dry_drill_by_absolute_path_from_another_directory(tmp_path: Path) -> None:
    experiment = REPO / "experiments" / "gpu_node_loss.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "drill", str(experiment), "--drill-dry",
         "-p", "no:cacheprovider"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert "INTERNALERROR" not in out, out[-2000:]
    assert proc.returncode == 0, out[-2000:]
    assert "1 skipped" in out  # a dry run injects nothing: its drills are skipped, not passed
