"""All proxies of one server, with the real server's create/update/populate/reset rules."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from chaos_rec.errors import ProxyRequestError
from chaos_rec.toxiproxy.allowlist import Allowlist, split_hostport
from chaos_rec.toxiproxy.model import ToxicSpec, bad_body, parse_toxic, update_toxic
from chaos_rec.toxiproxy.proxy import Proxy

__all__ = ["ProxyCollection", "ProxyInput"]


@dataclass(frozen=True)
class ProxyInput:
    """A validated proxy definition from a request body."""

    name: str
    listen: str
    upstream: str
    enabled: bool


def _field(body: dict[str, Any], key: str, default: Any, kind: type) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is str and isinstance(value, bool)):
        raise bad_body(f"{key} must be a {kind.__name__}, got {value!r}")
    return value


class ProxyCollection:
    """Every proxy by name; all changes go through one lock, so requests never interleave."""

    def __init__(self, allowlist: Allowlist, seed: int | None = None) -> None:
        self.allowlist = allowlist
        self.seed = seed
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()

    # -- parsing -------------------------------------------------------------------------------

    def parse_proxy(self, body: Any, where: str = "") -> ProxyInput:
        """Validate a proxy definition: name and upstream required, allowlist checked."""
        if not isinstance(body, dict):
            raise bad_body(f"expected a JSON object{where}")
        name = _field(body, "name", "", str)
        upstream = _field(body, "upstream", "", str)
        listen = _field(body, "listen", "", str) or "127.0.0.1:0"
        enabled = _field(body, "enabled", True, bool)
        if not name:
            raise ProxyRequestError(f"missing required field: name{where}", 400)
        if not upstream:
            raise ProxyRequestError(f"missing required field: upstream{where}", 400)
        split_hostport(listen, "listen")
        if enabled:
            self.allowlist.listen_host(listen)
            self.allowlist.check_upstream(upstream)
        return ProxyInput(name, listen, upstream, enabled)

    def get(self, name: str) -> Proxy:
        """A proxy by name; 404 when missing."""
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ProxyRequestError("proxy not found", 404)
        return proxy

    # -- proxies -------------------------------------------------------------------------------

    async def create(self, spec: ProxyInput) -> Proxy:
        """Add a proxy (409 when the name exists) and start it when enabled."""
        if spec.name in self.proxies:
            raise ProxyRequestError("proxy already exists", 409)
        proxy = await self._started(spec)
        self.proxies[spec.name] = proxy
        return proxy

    async def _started(self, spec: ProxyInput) -> Proxy:
        """A new proxy, listening when enabled (500 when binding fails: nothing kept)."""
        proxy = Proxy(spec.name, spec.listen, spec.upstream, self.allowlist, self.seed)
        if spec.enabled:
            await proxy.start()
        return proxy

    async def add_or_replace(self, spec: ProxyInput) -> Proxy:
        """The real ``AddOrReplace``: keep a proxy that does not differ, else stop and replace it.

        As in the real server, the old proxy is stopped before the new one binds; when that
        bind fails, the old proxy stays in the collection, stopped (``enabled`` false).
        """
        old = self.proxies.get(spec.name)
        if old is not None:
            if spec.upstream == old.upstream and spec.listen in (old.listen, old.requested_listen):
                return old
            old.stop()
        proxy = await self._started(spec)
        self.proxies[spec.name] = proxy
        return proxy

    async def update(self, name: str, body: Any) -> Proxy:
        """Change listen/upstream/enabled; a new address restarts the proxy."""
        proxy = self.get(name)
        if not isinstance(body, dict):
            raise bad_body("expected a JSON object")
        listen = _field(body, "listen", proxy.listen, str) or proxy.listen
        upstream = _field(body, "upstream", proxy.upstream, str) or proxy.upstream
        enabled = _field(body, "enabled", proxy.enabled, bool)
        split_hostport(listen, "listen")
        if enabled:
            self.allowlist.listen_host(listen)
            self.allowlist.check_upstream(upstream)
        if listen != proxy.listen or upstream != proxy.upstream:
            proxy.stop()
            proxy.listen = proxy.requested_listen = listen
            proxy.upstream = upstream
        if enabled and not proxy.enabled:
            await proxy.start()
        elif not enabled and proxy.enabled:
            proxy.stop()
        return proxy

    def delete(self, name: str) -> None:
        """Stop and forget a proxy; 404 when missing."""
        proxy = self.get(name)
        proxy.stop()
        del self.proxies[name]

    async def populate(self, body: Any) -> tuple[list[Proxy], ProxyRequestError | None]:
        """The real ``PopulateJson``: validate every proxy, then add or replace them in order.

        Validation (a bad body, a missing field, an address outside the allowlist) raises before
        anything changes. Applying stops at the first proxy that cannot be started (a port in
        use): the proxies applied before it stay and are returned with the error. A name given
        twice is applied twice, the later definition replacing the earlier one.
        """
        if not isinstance(body, list):
            raise bad_body("expected a JSON array of proxies")
        specs = [self.parse_proxy(item, f" at proxy {i}") for i, item in enumerate(body, 1)]
        result: list[Proxy] = []
        for spec in specs:
            try:
                result.append(await self.add_or_replace(spec))
            except ProxyRequestError as exc:
                return result, exc
        return result, None

    async def reset(self) -> None:
        """Re-enable every proxy and remove every toxic; proxies stay."""
        for proxy in self.proxies.values():
            proxy.remove_all_toxics()
            if not proxy.enabled:
                await proxy.start()

    def shutdown(self) -> None:
        """Stop every proxy (server exit)."""
        for proxy in self.proxies.values():
            proxy.stop()

    # -- toxics --------------------------------------------------------------------------------

    def add_toxic(self, proxy_name: str, body: Any) -> ToxicSpec:
        """Parse and add a toxic; 404/400/409 like the real server."""
        proxy = self.get(proxy_name)
        spec = parse_toxic(body, seed=self.seed, proxy=proxy_name)
        proxy.add_toxic(spec)
        return spec

    def get_toxic(self, proxy_name: str, toxic: str) -> ToxicSpec:
        """One toxic; 404 when the proxy or the toxic is missing."""
        spec = self.get(proxy_name).toxics.get(toxic)
        if spec is None:
            raise ProxyRequestError("toxic not found", 404)
        return spec

    def update_toxic(self, proxy_name: str, toxic: str, body: Any) -> ToxicSpec:
        """Merge new attributes / toxicity into a toxic."""
        spec = self.get_toxic(proxy_name, toxic)
        attributes, toxicity = update_toxic(spec, body)
        return self.get(proxy_name).update_toxic(toxic, attributes, toxicity)

    def remove_toxic(self, proxy_name: str, toxic: str) -> None:
        """Remove a toxic; 404 when missing."""
        self.get(proxy_name).remove_toxic(toxic)
