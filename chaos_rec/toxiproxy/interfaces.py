"""The narrow interfaces between a proxy, its connections and their toxic stages.

``proxy`` imports ``link``, ``link`` imports ``toxics``; neither lower module imports the one
above it (not even for typing). What a lower layer needs from the layer above is a Protocol
here, so the dependency runs one way: proxy → link → toxics → interfaces → model.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from chaos_rec.toxiproxy.model import ToxicSpec

__all__ = ["ConnectionControl", "ConnectionOwner", "StagePipe"]

ConnT_contra = TypeVar("ConnT_contra", contravariant=True)


class ConnectionControl(Protocol):
    """What a toxic stage may do to its connection (``link.Connection``)."""

    def close(self) -> None:
        """Close both sockets, flushing what they already buffered."""

    def reset(self) -> None:
        """Abort both sockets with a TCP RST."""


class StagePipe(Protocol):
    """What a toxic stage sees of the direction it runs on (``link.Pipe``)."""

    @property
    def conn(self) -> ConnectionControl:
        """The connection the direction belongs to."""


class ConnectionOwner(Protocol[ConnT_contra]):
    """What a connection needs from the proxy that accepted it (``proxy.Proxy``)."""

    @property
    def name(self) -> str:
        """The proxy's name (for log lines)."""

    def toxic_index(self, spec: ToxicSpec, stream: str) -> int:
        """Position of a toxic in its direction's chain."""

    def connection_closed(self, conn: ConnT_contra) -> None:
        """A connection ended: count its bytes and forget it."""
