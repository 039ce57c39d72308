"""The package's public surface and the pinned client signature do not change by accident."""

from __future__ import annotations

import inspect
import subprocess
import sys

import chaos_rec.toxiproxy as pkg
from chaos_rec.toxiproxy.client import ToxiproxyClient


def test_public_names() -> None:
    assert sorted(pkg.__all__) == ["ToxiproxyClient", "find_real_server"]


def test_client_methods_match_contract() -> None:
    expected = {
        "version": "(self) -> 'str'",
        "proxies": "(self) -> 'dict[str, dict[str, Any]]'",
        "get_proxy": "(self, name: 'str') -> 'dict[str, Any]'",
        "create_proxy": "(self, name: 'str', listen: 'str', upstream: 'str', enabled: 'bool' = True) -> 'dict[str, Any]'",
        "populate": "(self, proxies: 'list[dict[str, Any]]') -> 'list[dict[str, Any]]'",
        "update_proxy": "(self, name: 'str', **fields: 'Any') -> 'dict[str, Any]'",
        "delete_proxy": "(self, name: 'str') -> 'None'",
        "enable": "(self, name: 'str') -> 'dict[str, Any]'",
        "disable": "(self, name: 'str') -> 'dict[str, Any]'",
        "toxics": "(self, proxy: 'str') -> 'list[dict[str, Any]]'",
        "add_toxic": "(self, proxy: 'str', type: 'str', attributes: 'dict[str, Any] | None' = None, *, name: 'str | None' = None, stream: 'str' = 'downstream', toxicity: 'float' = 1.0) -> 'dict[str, Any]'",
        "update_toxic": "(self, proxy: 'str', name: 'str', **fields: 'Any') -> 'dict[str, Any]'",
        "remove_toxic": "(self, proxy: 'str', name: 'str') -> 'None'",
        "reset": "(self) -> 'None'",
    }
    for name, sig in expected.items():
        assert str(inspect.signature(getattr(ToxiproxyClient, name))) == sig, name
    init = inspect.signature(ToxiproxyClient.__init__)
    assert init.parameters["url"].default == "http://127.0.0.1:8474"
    assert init.parameters["timeout"].default == 5.0


def test_import_does_not_load_the_server() -> None:
    code = (
        "import sys, chaos_rec.toxiproxy; "
        "print('aiohttp' in sys.modules, 'chaos_rec.toxiproxy.server' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
