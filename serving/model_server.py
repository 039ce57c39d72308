"""`python -m serving.model_server`: one model-server replica (one "GPU node")."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from serving.settings import ServerSettings


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and serve until SIGTERM."""
    settings = ServerSettings.from_argv(argv)
    from serving.app import serve

    try:
        return asyncio.run(serve(settings))
    except OSError as exc:  # e.g. port in use
        print(f"error: {settings.name}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
