"""Prometheus text exposition of the fault proxy's state and traffic."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaos_rec.toxiproxy.collection import ProxyCollection

__all__ = ["render_metrics"]


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(coll: ProxyCollection) -> str:
    """All metrics as Prometheus text (names follow the real server's proxy metrics)."""
    lines: list[str] = []

    def family(name: str, kind: str, help_: str) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")

    family("toxiproxy_proxy_sent_bytes_total", "counter", "Bytes the proxy wrote, by direction.")
    for p in coll.proxies.values():
        for d in ("upstream", "downstream"):
            lines.append(
                f'toxiproxy_proxy_sent_bytes_total{{direction="{d}",proxy="{_esc(p.name)}",'
                f'listener="{_esc(p.listen)}",upstream="{_esc(p.upstream)}"}} {p.live_bytes(d)}'
            )
    family("chaos_rec_toxiproxy_enabled", "gauge", "1 when the proxy is listening.")
    for p in coll.proxies.values():
        lines.append(f'chaos_rec_toxiproxy_enabled{{proxy="{_esc(p.name)}"}} {int(p.enabled)}')
    family("chaos_rec_toxiproxy_connections", "gauge", "Open proxied connections.")
    for p in coll.proxies.values():
        lines.append(
            f'chaos_rec_toxiproxy_connections{{proxy="{_esc(p.name)}"}} {len(p.connections)}'
        )
    family("chaos_rec_toxiproxy_accepted_total", "counter", "Client connections accepted.")
    for p in coll.proxies.values():
        lines.append(f'chaos_rec_toxiproxy_accepted_total{{proxy="{_esc(p.name)}"}} {p.accepted}')
    family(
        "chaos_rec_toxiproxy_upstream_failures_total",
        "counter",
        "Connections dropped because the upstream could not be reached.",
    )
    for p in coll.proxies.values():
        lines.append(
            f'chaos_rec_toxiproxy_upstream_failures_total{{proxy="{_esc(p.name)}"}} '
            f"{p.upstream_failures}"
        )
    family("chaos_rec_toxiproxy_toxics", "gauge", "Toxics configured, by type and stream.")
    for p in coll.proxies.values():
        for t in p.toxics.values():
            lines.append(
                f'chaos_rec_toxiproxy_toxics{{proxy="{_esc(p.name)}",toxic="{_esc(t.name)}",'
                f'type="{t.type}",stream="{t.stream}"}} 1'
            )
    return "\n".join(lines) + "\n"
