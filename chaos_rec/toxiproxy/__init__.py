"""Toxiproxy-compatible fault proxy: HTTP API, TCP proxy engine, toxics, and a client.

Importing this package loads only the client; the server modules load when used.
"""

from __future__ import annotations

from chaos_rec.toxiproxy.client import ToxiproxyClient
from chaos_rec.toxiproxy.realserver import find_real_server

__all__ = ["ToxiproxyClient", "find_real_server"]
