"""A small, typed client for the Toxiproxy HTTP API (ours or a real ``toxiproxy-server``)."""

from __future__ import annotations

from typing import Any

from chaos_rec.errors import ProxyError
from chaos_rec.jsonhttp import call

__all__ = ["ToxiproxyClient"]

_HEADERS = {"User-Agent": "chaos-rec-toxiproxy-client/1"}


class ToxiproxyClient:
    """Client for one Toxiproxy server; every failure raises ``ProxyError`` with the server's message.

    A malformed server URL raises ``ConfigError`` (see ``chaos_rec.boundary``).
    """

    def __init__(self, url: str = "http://127.0.0.1:8474", timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    # -- plumbing ---------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; return the decoded JSON body (None for an empty body)."""
        url = self.url + path
        reply = call(
            method,
            url,
            json=body,
            timeout=self.timeout,
            headers=_HEADERS,
            into=ProxyError,
            what=f"toxiproxy {method} {url}",
        )
        if not reply.ok:
            raise ProxyError(f"toxiproxy {method} {path}: {reply.status} {reply.error_message()}")
        return reply.data

    # -- server -------------------------------------------------------------------------------

    def version(self) -> str:
        """The server's version string."""
        data = self._request("GET", "/version")
        if isinstance(data, dict):
            return str(data.get("version", ""))
        return str(data).strip()

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic."""
        self._request("POST", "/reset")

    # -- proxies ------------------------------------------------------------------------------

    def proxies(self) -> dict[str, dict[str, Any]]:
        """Every proxy by name, each with its toxics."""
        return _dict(self._request("GET", "/proxies"), "GET /proxies")

    def get_proxy(self, name: str) -> dict[str, Any]:
        """One proxy with its toxics."""
        return _dict(self._request("GET", f"/proxies/{name}"), f"GET /proxies/{name}")

    def create_proxy(
        self, name: str, listen: str, upstream: str, enabled: bool = True
    ) -> dict[str, Any]:
        """Create a proxy; the answer carries the real listen address (port 0 picks one)."""
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return _dict(self._request("POST", "/proxies", body), "POST /proxies")

    def populate(self, proxies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create or replace proxies in one call (safe to repeat); returns them."""
        data = _dict(self._request("POST", "/populate", proxies), "POST /populate")
        return list(data.get("proxies") or [])

    def update_proxy(self, name: str, **fields: Any) -> dict[str, Any]:
        """Change ``listen``, ``upstream`` or ``enabled`` of a proxy."""
        return _dict(self._request("POST", f"/proxies/{name}", fields), f"POST /proxies/{name}")

    def delete_proxy(self, name: str) -> None:
        """Delete a proxy (closes its listener and connections)."""
        self._request("DELETE", f"/proxies/{name}")

    def enable(self, name: str) -> dict[str, Any]:
        """Enable a proxy (listen again)."""
        return self.update_proxy(name, enabled=True)

    def disable(self, name: str) -> dict[str, Any]:
        """Disable a proxy: close its listener and every open connection."""
        return self.update_proxy(name, enabled=False)

    # -- toxics -------------------------------------------------------------------------------

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        """The toxics of one proxy."""
        path = f"/proxies/{proxy}/toxics"
        return _list(self._request("GET", path), f"GET {path}")

    def add_toxic(
        self,
        proxy: str,
        type: str,
        attributes: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> dict[str, Any]:
        """Add a toxic; its name defaults to ``<type>_<stream>``."""
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes or {},
        }
        if name is not None:
            body["name"] = name
        path = f"/proxies/{proxy}/toxics"
        return _dict(self._request("POST", path, body), f"POST {path}")

    def update_toxic(self, proxy: str, name: str, **fields: Any) -> dict[str, Any]:
        """Change a toxic's ``attributes`` (merged) or ``toxicity``."""
        path = f"/proxies/{proxy}/toxics/{name}"
        return _dict(self._request("POST", path, fields), f"POST {path}")

    def remove_toxic(self, proxy: str, name: str) -> None:
        """Remove a toxic (a timeout toxic closes the connections it held, as the real one does)."""
        self._request("DELETE", f"/proxies/{proxy}/toxics/{name}")


def _dict(data: Any, what: str) -> dict[str, Any]:
    """Check that the JSON answer is an object."""
    if not isinstance(data, dict):
        raise ProxyError(f"toxiproxy {what}: unexpected answer {str(data)[:200]!r}")
    return data


def _list(data: Any, what: str) -> list[Any]:
    """Check that the JSON answer is an array."""
    if not isinstance(data, list):
        raise ProxyError(f"toxiproxy {what}: unexpected answer {str(data)[:200]!r}")
    return data
