"""The supervisor's control API refuses bad requests with a 4xx before it acts on anything.

The server is the real ControlServer on a loopback port; the handler behind it is either a
recorder (to prove a refused request never reaches it) or a real Supervisor built from a plan
whose components are never started.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from chaos_rec.stack import StackConfig
from chaos_rec.stack.components import build_plan
from chaos_rec.stack.control import ControlServer
from chaos_rec.stack.records import Command
from chaos_rec.stack.supervisor import Supervisor

TOKEN = "t0ken"


@pytest.fixture
def served() -> Iterator[tuple[str, list[tuple[str, str, dict[str, Any]]]]]:
    calls: list[tuple[str, str, dict[str, Any]]] = []

    def handler(method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        calls.append((method, path, body))
        return 200, {"ok": True}

    server = ControlServer(handler, TOKEN)
    server.start()
    try:
        yield server.url, calls
    finally:
        server.close()


def _raw(url: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict[str, Any]]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        conn.putrequest("POST", "/signal", skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders(body or None)
        resp = conn.getresponse()
        reply: dict[str, Any] = json.loads(resp.read())
        return resp.status, reply
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        ({"Authorization": ""}, b"{}", 401, "the control API needs the stack's admin token"),
        ({"Authorization": "Bearer wrong"}, b"{}", 401, "the control API needs the stack's admin token"),
        ({}, b"{not json", 400, "body must be a JSON object"),
        ({}, b"[1]", 400, "body must be a JSON object"),
        ({}, b"[" * 100_000, 400, "body must be a JSON object"),
        ({"Content-Length": "lots"}, b"", 400, "Content-Length must be a whole number of bytes"),
        ({"Content-Length": "-5"}, b"", 400, "Content-Length must be a whole number of bytes"),
    ],
)  # fmt: skip
def test_a_refused_request_never_reaches_the_handler(
    served: tuple[str, list[Any]], headers: dict[str, str], body: bytes, status: int, error: str
) -> None:
    url, calls = served
    sent = {"Authorization": f"Bearer {TOKEN}", "Content-Length": str(len(body)), **headers}
    sent = {key: value for key, value in sent.items() if value}  # "": not sent
    assert _raw(url, sent, body) == (status, {"error": error})
    assert calls == []


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    config = StackConfig.from_dict(
        {"state_dir": tmp_path, "base_port": 20000, "bundle": tmp_path, "replicas": 0,
         "gateway": False, "toxiproxy": False, "prometheus": False}
    )  # fmt: skip
    sup = Supervisor(build_plan(config))
    sup.control.start()
    try:
        yield sup
    finally:
        sup.control.close()
        for child in sup.children.values():  # a command that wrongly started one: stop it
            if child.proc is not None:
                child.proc.kill()
                child.proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("op", "args", "status", "error"),
    [
        ("signal", {"name": "redis", "action": "explode"}, 400,
         "action must be kill, stop or cont, got 'explode'"),
        ("signal", {"name": "nope", "action": "kill"}, 404, "no component 'nope' (known: redis)"),
        ("restart", {"name": "redis", "wipe": "yes"}, 400, "wipe must be true or false, got 'yes'"),
        ("restart", {"name": "redis", "wipe": 1}, 400, "wipe must be true or false, got 1"),
    ],
)  # fmt: skip
def test_bad_commands_are_4xx_and_touch_no_component(
    supervisor: Supervisor, op: str, args: dict[str, Any], status: int, error: str
) -> None:
    redis = supervisor.children["redis"]
    data_dir = redis.spec.data_dir
    assert data_dir is not None
    data_dir.mkdir(parents=True)
    (data_dir / "dump.rdb").write_text("kept")
    assert supervisor._execute(Command(op, args)) == (status, {"error": error})
    assert (data_dir / "dump.rdb").read_text() == "kept"  # not wiped
    assert (redis.proc, redis.restarts, redis.status) == (None, 0, "stopped")


def test_commands_before_the_stack_is_ready_and_unknown_endpoints_are_refused(
    supervisor: Supervisor,
) -> None:
    assert supervisor.handle("POST", "/signal", {"name": "redis", "action": "kill"}) == (
        409,
        {"error": "stack is starting"},
    )
    assert supervisor.handle("DELETE", "/state", {}) == (
        404,
        {"error": "no such endpoint DELETE /state"},
    )
    assert supervisor.commands.empty()
