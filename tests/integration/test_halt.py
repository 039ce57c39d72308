"""``chaos-rec halt``: a real drill session is interrupted and a real fault proxy is reset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaos_rec.cli import main
from chaos_rec.core.guard import MARKER
from chaos_rec.toxiproxy.client import ToxiproxyClient
from chaos_rec.toxiproxy.testing import running_fault_proxy
from tests.support.procs import free_port

pytestmark = pytest.mark.integration

# a stand-in for a drill session: it rolls back (writes a file) when Ctrl-C reaches it
SESSION = """
import signal, sys, time
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
Path(sys.argv[1]).write_text("ready")
try:
    time.sleep(60)
except KeyboardInterrupt:
    Path(sys.argv[1]).write_text("rolled back")
"""


def test_halt_interrupts_the_drill_in_progress_and_resets_every_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    flag = tmp_path / "flag"
    session = subprocess.Popen(
        [sys.executable, "-c", SESSION, str(flag)],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 20
        while not flag.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with running_fault_proxy() as url:
            client = ToxiproxyClient(url)
            client.create_proxy(
                "feature-store", f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
            )
            client.add_toxic("feature-store", "latency", {"latency": 500})
            client.create_proxy("replica-0", f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}")
            client.disable("replica-0")
            (state / MARKER).write_text(
                json.dumps({"pid": session.pid, "drill": "gpu_node_loss", "toxiproxy_url": url})
            )
            dep = tmp_path / "dep.json"
            dep.write_text(json.dumps({"gateway_url": "http://127.0.0.1:9", "toxiproxy_url": url}))
            assert main(["halt", "--state-dir", str(state), "--drill-stack", str(dep)]) == 0
            out = capsys.readouterr().out.splitlines()
            assert out[0] == (
                f"chaos-rec halt: interrupted drill gpu_node_loss (pid {session.pid}): ended"
            )
            assert {line for line in out[1:]} == {
                "chaos-rec halt: fault proxy: reset feature-store",
                "chaos-rec halt: fault proxy: reset replica-0",
            }
            proxies = client.proxies()
            assert all(p["toxics"] == [] and p["enabled"] for p in proxies.values())
        assert session.wait(timeout=10) == 0 and flag.read_text() == "rolled back"
        assert not (state / MARKER).exists()
        assert main(["halt", "--state-dir", str(state)]) == 0
        assert capsys.readouterr().out.strip() == "chaos-rec halt: nothing to undo"
    finally:
        if session.poll() is None:
            os.kill(session.pid, signal.SIGKILL)
            session.wait()
