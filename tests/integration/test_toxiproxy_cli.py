"""The fault proxy's command line: starts, answers, stops cleanly; bad input is one line."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from chaos_rec.toxiproxy.testing import free_port, wait_ready

pytestmark = pytest.mark.integration


def test_chaos_rec_toxiproxy_runs_and_stops_on_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaos_rec", "toxiproxy", "--port", str(port), "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)  # type: ignore[arg-type]
        r = httpx.post(
            f"http://127.0.0.1:{port}/proxies",
            json={"name": "x", "upstream": f"127.0.0.1:{free_port()}"},
            timeout=5,
        )
        listen_port = int(r.json()["listen"].rsplit(":", 1)[1])
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/version", timeout=1)
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", listen_port), timeout=1),
    ):
        pass


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "/nonexistent/proxies.json"], "cannot read toxiproxy config"),
        (["--config", "BAD"], "is not valid JSON"),
        (["--config", "UPSTREAM"], "allowlist"),
        (["--allow-host", "not a host"], "bad allowlist entry"),
        (["--port", "70000"], "--port must be"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    up = tmp_path / "up.json"
    up.write_text('[{"name": "a", "upstream": "10.0.0.1:1", "listen": "127.0.0.1:0"}]')
    args = [str(bad) if a == "BAD" else str(up) if a == "UPSTREAM" else a for a in args]
    if "--port" not in args:
        args += ["--port", str(free_port())]
    proc = subprocess.run(
        [sys.executable, "-m", "chaos_rec.toxiproxy", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
