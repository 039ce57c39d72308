"""The public names of the drill and report packages change only on purpose."""

from __future__ import annotations

import subprocess
import sys

import chaos_rec.drill
import chaos_rec.report


def test_public_surface() -> None:
    assert sorted(chaos_rec.drill.__all__) == [
        "DrillConfig",
        "DrillTarget",
        "FaultProxy",
        "PythonDrill",
    ]
    assert sorted(chaos_rec.report.__all__) == [
        "DrillRecord",
        "SLOResult",
        "compare",
        "load_baseline",
        "load_report",
        "write_session_report",
    ]


def test_plugin_import_is_light() -> None:
    code = (
        "import sys, chaos_rec.plugin, chaos_rec.drill, chaos_rec.report;"
        "heavy = [m for m in ('chaoslib', 'locust', 'torch', 'gevent') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""
