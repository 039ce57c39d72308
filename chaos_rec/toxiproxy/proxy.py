"""A proxy (listener + live connections + toxics) and the collection of all proxies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

from chaos_rec.errors import ProxyRequestError
from chaos_rec.toxiproxy.allowlist import Allowlist, split_hostport
from chaos_rec.toxiproxy.link import Connection, Side
from chaos_rec.toxiproxy.model import ToxicSpec

__all__ = ["Proxy"]

log = logging.getLogger("chaos_rec.toxiproxy")

UPSTREAM_CONNECT_TIMEOUT = 10.0


class Proxy:
    """One named proxy: listen address → upstream, its toxics and its open connections."""

    def __init__(
        self, name: str, listen: str, upstream: str, allowlist: Allowlist, seed: int | None
    ) -> None:
        self.name = name
        self.listen = listen  # actual address once started
        self.requested_listen = listen
        self.upstream = upstream
        self.enabled = False
        self.allowlist = allowlist
        self.seed = seed
        self.toxics: dict[str, ToxicSpec] = {}
        self.connections: set[Connection] = set()
        self.pending: set[Side] = set()
        self.bytes: dict[str, int] = {"upstream": 0, "downstream": 0}
        self.accepted = 0
        self.upstream_failures = 0
        self._server: asyncio.Server | None = None

    # -- JSON ----------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The proxy as the API shows it, with its toxics."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxic_list(),
        }

    def toxic_list(self) -> list[dict[str, Any]]:
        """Toxics in the real server's order: upstream ones first, each in insertion order."""
        ordered = [t for t in self.toxics.values() if t.stream == "upstream"]
        ordered += [t for t in self.toxics.values() if t.stream == "downstream"]
        return [t.to_json() for t in ordered]

    def toxic_index(self, spec: ToxicSpec, stream: str) -> int:
        """Position of a toxic in its direction's chain."""
        chain = [t for t in self.toxics.values() if t.stream == stream]
        return chain.index(spec) if spec in chain else len(chain)

    # -- listener ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen; port 0 picks a free port and ``listen`` reports it. 500 when binding fails."""
        if self.enabled:
            return
        host, port = self.allowlist.listen_host(self.listen)
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(
                self._new_side, host=host, port=port, reuse_address=True, backlog=1024
            )
        except OSError as exc:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            reason = f"bind: {os.strerror(exc.errno).lower()}" if exc.errno else str(exc)
            raise ProxyRequestError(f"listen tcp {where}: {reason}", 500) from exc  # Go's text
        self._server = server
        sockname = server.sockets[0].getsockname()
        bound_host = sockname[0]
        self.listen = (
            f"[{bound_host}]:{sockname[1]}" if ":" in bound_host else f"{bound_host}:{sockname[1]}"
        )
        self.enabled = True
        log.info("started proxy %s listen=%s upstream=%s", self.name, self.listen, self.upstream)

    def stop(self) -> None:
        """Close the listener and every open connection."""
        if not self.enabled:
            return
        self.enabled = False
        if self._server is not None:
            self._server.close()
            self._server = None
        for side in list(self.pending):
            if side.transport is not None:
                side.transport.close()
        self.pending.clear()
        for conn in list(self.connections):
            conn.close()
        log.info("stopped proxy %s", self.name)

    def _new_side(self) -> Side:
        side = Side()
        side.on_made = self._client_made
        side.on_lost = self.pending.discard
        return side

    def _client_made(self, client: Side) -> None:
        assert client.transport is not None
        client.transport.pause_reading()
        self.pending.add(client)
        self.accepted += 1
        asyncio.get_running_loop().create_task(self._dial(client))

    async def _dial(self, client: Side) -> None:
        host, port = split_hostport(self.upstream, "upstream")
        loop = asyncio.get_running_loop()
        upstream = Side()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: upstream, host, port),
                UPSTREAM_CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError) as exc:
            self.upstream_failures += 1
            log.warning("proxy %s: upstream %s unreachable: %s", self.name, self.upstream, exc)
            self.pending.discard(client)
            if client.transport is not None:
                client.transport.close()
            return
        self.pending.discard(client)
        if client.lost or not self.enabled:
            if upstream.transport is not None:
                upstream.transport.close()
            return
        for side in (client, upstream):
            sock = side.transport.get_extra_info("socket") if side.transport else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(self, client, upstream)
        self.connections.add(conn)
        for stream in ("upstream", "downstream"):
            conn.pipe(stream).start_stages([t for t in self.toxics.values() if t.stream == stream])
        if upstream.lost:
            conn.close()
            return
        conn.flush_early()
        assert client.transport is not None
        client.transport.resume_reading()

    def connection_closed(self, conn: Connection) -> None:
        """A connection ended: count its bytes and forget it."""
        if conn in self.connections:
            self.connections.discard(conn)
            self.bytes["upstream"] += conn.up.bytes
            self.bytes["downstream"] += conn.down.bytes

    def live_bytes(self, stream: str) -> int:
        """Bytes sent in one direction, closed and open connections together."""
        return self.bytes[stream] + sum(c.pipe(stream).bytes for c in self.connections)

    # -- toxics --------------------------------------------------------------------------------

    def add_toxic(self, spec: ToxicSpec) -> None:
        """Add a toxic and start it on every live connection (toxicity drawn per connection)."""
        if spec.name in self.toxics:
            raise ProxyRequestError("toxic already exists", 409)
        self.toxics[spec.name] = spec
        for conn in list(self.connections):
            conn.pipe(spec.stream).add_toxic(spec)

    def update_toxic(self, name: str, attributes: dict[str, int], toxicity: float) -> ToxicSpec:
        """Apply validated new attributes/toxicity to a toxic and its live connections."""
        spec = self.toxics[name]
        spec.attributes = attributes
        spec.toxicity = toxicity
        spec.generation += 1
        for conn in list(self.connections):
            conn.pipe(spec.stream).update_toxic(spec)
        return spec

    def remove_toxic(self, name: str) -> None:
        """Remove a toxic from live connections too; they never hang (a timeout closes them)."""
        spec = self.toxics.pop(name, None)
        if spec is None:
            raise ProxyRequestError("toxic not found", 404)
        for conn in list(self.connections):
            conn.pipe(spec.stream).remove_toxic(spec)

    def remove_all_toxics(self) -> None:
        """Remove every toxic."""
        for name in list(self.toxics):
            self.remove_toxic(name)
