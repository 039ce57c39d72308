"""The session HTML report renders in headless Chromium, with its plots laid out."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.plugin.conftest import Writer, action, probe

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def chromium_cmd(tmp_path: Path) -> list[str]:
    """Headless Chromium with its own profile under ``tmp_path``."""
    return [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]


def dump_dom(html: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """The page as headless Chromium laid it out (its scripts run), and its <body> tag."""
    dom = subprocess.run([*chromium_cmd(tmp_path), "--dump-dom", html.as_uri()], capture_output=True, text=True,
                         timeout=120, check=False)  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body is not None, dom.stdout[:500]
    return dom, body.group(0)


def chromium() -> str:
    """The Chromium binary; fails (never skips) with the fix when it is missing."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "headless Chromium is required for the report test: `apt-get install -y chromium`",
        pytrace=False,
    )


@pytest.mark.integration
def test_html_report_loads_in_headless_chromium_with_its_plots(
    project: pytest.Pytester, write_experiment: Writer, tmp_path: Path
) -> None:
    write_experiment(
        "feature_store_slow",
        probes=[probe("healthy", "value", tolerance=True, v=True)],
        method=[action("figures", "figures", p99=512.0)],
    )
    write_experiment("gpu_node_loss", method=[action("figures", "figures", p99=250.0)])
    project.runpytest("-m", "drill", "--drill-report", "out")
    html = project.path / "out" / "report.html"
    assert html.is_file()
    dom, body = dump_dom(html, tmp_path)
    assert 'data-loaded="yes"' in body
    assert 'data-plots="2"' in body
    assert 'data-plots-rendered="2"' in body
    assert dom.stdout.count('class="window-fault"') == 6  # three panels per drill, fault shaded
    assert "MISSED" in dom.stdout
    shot = tmp_path / "shot.png"
    png = subprocess.run(
        [*chromium_cmd(tmp_path), f"--screenshot={shot}", "--window-size=900,1600", html.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert png.returncode == 0, png.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
