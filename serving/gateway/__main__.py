"""`python -m serving.gateway`."""

from __future__ import annotations

from serving.gateway.server import main

if __name__ == "__main__":
    raise SystemExit(main())
