"""Fault-proxy links over the plain Toxiproxy HTTP API (ours or a real toxiproxy-server)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaos_rec.errors import ProxyError
from chaos_rec.jsonhttp import call

__all__ = ["delete_links", "ensure_links", "reset_proxy"]

_TIMEOUT = 5.0
_HEADERS = {"User-Agent": "chaos-rec-stack"}


def _call(method: str, url: str, body: Any = None, *, absent_ok: bool = False) -> Any:
    """One fault-proxy API call; its JSON answer. ``absent_ok``: a 404 is no error."""
    reply = call(
        method,
        url,
        json=body,
        timeout=_TIMEOUT,
        headers=_HEADERS,
        into=ProxyError,
        what=f"fault proxy {method} {url}",
    )
    if not reply.ok and not (absent_ok and reply.status == 404):
        raise ProxyError(f"fault proxy {method} {url} -> {reply.status}: {reply.error_message()}")
    return reply.data


def ensure_links(api_url: str, links: Mapping[str, Mapping[str, str]]) -> None:
    """Create (or fix) every link with POST /populate; repeating it is safe."""
    if not links:
        return
    body = [
        {"name": name, "listen": link["listen"], "upstream": link["upstream"], "enabled": True}
        for name, link in links.items()
    ]
    _call("POST", f"{api_url}/populate", body)


def reset_proxy(api_url: str, links: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Recreate missing links, remove every toxic, re-enable every proxy; says what changed."""
    proxies = _call("GET", f"{api_url}/proxies")
    changed: list[str] = []
    if isinstance(proxies, dict):
        for name, proxy in sorted(proxies.items()):
            toxics = proxy.get("toxics") or []
            if toxics:
                names = ", ".join(str(t.get("name")) for t in toxics)
                changed.append(f"removed toxics from {name}: {names}")
            if proxy.get("enabled") is False:
                changed.append(f"re-enabled proxy {name}")
        missing = [n for n in links if n not in proxies]
        changed += [f"recreated link {n}" for n in missing]
    ensure_links(api_url, links)
    _call("POST", f"{api_url}/reset")
    return changed


def delete_links(api_url: str, names: list[str]) -> None:
    """Delete our links from an external fault proxy (missing ones are fine)."""
    for name in names:
        _call("DELETE", f"{api_url}/proxies/{name}", absent_ok=True)
