"""Which hosts proxies may listen on and forward to (loopback by default)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from chaos_rec.errors import ConfigError, ProxyRequestError

__all__ = ["Allowlist", "split_hostport"]

_LOOPBACK_NETS = ("127.0.0.0/8", "::1/128")
_LOOPBACK_NAMES = ("localhost",)
_WILDCARDS = ("", "0.0.0.0", "::", "[::]")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def split_hostport(addr: str, what: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too); a 400 on a malformed address."""
    if not isinstance(addr, str) or ":" not in addr:
        raise ProxyRequestError(f"bad request body: {what} must be host:port, got {addr!r}", 400)
    host, _, port_s = addr.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_s)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ProxyRequestError(f"bad request body: {what} has a bad port: {addr!r}", 400)
    return host, port


@dataclass(frozen=True)
class Allowlist:
    """Networks and host names that upstreams may point at; listen addresses stay loopback unless allowed."""

    networks: tuple[IPNetwork, ...]
    names: frozenset[str]
    public_listen: bool = False

    @classmethod
    def build(cls, extra: Iterable[str] = (), *, public_listen: bool = False) -> Allowlist:
        """Loopback plus ``extra`` entries (IP, CIDR or host name); ConfigError on a bad entry."""
        nets: list[IPNetwork] = [ipaddress.ip_network(n) for n in _LOOPBACK_NETS]
        names = set(_LOOPBACK_NAMES)
        for entry in extra:
            entry = entry.strip()
            if not entry:
                continue
            try:
                nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if any(c in entry for c in "/ :") or entry.startswith("-"):
                    raise ConfigError(
                        f"bad allowlist entry {entry!r}: use an IP, a CIDR or a host name"
                    ) from None
                names.add(entry.lower())
        return cls(tuple(nets), frozenset(names), public_listen)

    def host_allowed(self, host: str) -> bool:
        """True when ``host`` is an allowed literal IP or an allowed name (no DNS lookups)."""
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return host.lower() in self.names
        return any(ip in net for net in self.networks)

    def check_upstream(self, upstream: str) -> None:
        """A 400 unless the upstream host is allowed."""
        host, _ = split_hostport(upstream, "upstream")
        if not self.host_allowed(host):
            raise ProxyRequestError(
                f"upstream host {host!r} is not on the fault proxy's allowlist "
                "(loopback by default; add it with --allow-host)",
                400,
            )

    def listen_host(self, listen: str) -> tuple[str, int]:
        """Where to bind for ``listen``: wildcards bind loopback unless public listening is on."""
        host, port = split_hostport(listen, "listen")
        if host in _WILDCARDS:
            return (host or "0.0.0.0", port) if self.public_listen else ("127.0.0.1", port)
        if host.lower() == "localhost":
            return "127.0.0.1", port
        if not self.public_listen and not _is_loopback(host):
            raise ProxyRequestError(
                f"listen host {host!r} is not allowed: proxies bind loopback "
                "(start the server with --allow-public-listen to bind elsewhere)",
                400,
            )
        return host, port


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
