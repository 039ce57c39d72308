"""Request ids in the real server's format: an xid (github.com/rs/xid), as zerolog's hlog sets.

An xid is 12 bytes, written as 20 characters of lowercase base32hex (``0-9a-v``) without
padding: 4 bytes of Unix time (big-endian seconds), 3 bytes of machine id, 2 bytes of process
id and a 3-byte counter that starts at a random value. Ids of one process sort by time and
never repeat within a second.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import secrets
import socket
import time

__all__ = ["XID_LENGTH", "new_request_id", "xid_time"]

XID_LENGTH = 20

_MACHINE = hashlib.md5(socket.gethostname().encode(), usedforsecurity=False).digest()[:3]
_PID = (os.getpid() & 0xFFFF).to_bytes(2, "big")
_COUNTER = itertools.count(secrets.randbelow(1 << 24))


def _encode(raw: bytes) -> str:
    return base64.b32hexencode(raw).decode("ascii").rstrip("=").lower()


def new_request_id(now: float | None = None) -> str:
    """A fresh xid for ``X-Toxiproxy-Request-Id``."""
    seconds = int(time.time() if now is None else now) & 0xFFFFFFFF
    count = next(_COUNTER) & 0xFFFFFF
    return _encode(seconds.to_bytes(4, "big") + _MACHINE + _PID + count.to_bytes(3, "big"))


def xid_time(xid: str) -> int:
    """The Unix second an xid was made (ValueError when it is not an xid)."""
    if len(xid) != XID_LENGTH:
        raise ValueError(f"an xid has {XID_LENGTH} characters, got {len(xid)}")
    raw = base64.b32hexdecode(xid.upper() + "====")
    return int.from_bytes(raw[:4], "big")
