"""``python -m chaos_rec.stack.prometheus_launcher``: write the scrape config, become prometheus.

A module of its own (the stack package does not import it), so ``-m`` runs it cleanly.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from chaos_rec.stack.prometheus import scrape_config

__all__ = ["main"]


def _target(text: str) -> tuple[str, str]:
    name, sep, url = text.partition("=")
    if not sep or not name or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected NAME=http://HOST:PORT/metrics, got {text!r}")
    return name, url


def main(argv: list[str] | None = None) -> int:
    """Write the config, clear the old TSDB, then become the prometheus binary (``exec``)."""
    parser = argparse.ArgumentParser(prog="chaos_rec.stack.prometheus_launcher")
    parser.add_argument("--binary", required=True)
    parser.add_argument("--dir", required=True, type=Path, help="config and TSDB live here")
    parser.add_argument("--listen", required=True, help="HOST:PORT (loopback)")
    parser.add_argument("--target", action="append", type=_target, default=[])
    args = parser.parse_args(argv)
    home: Path = args.dir
    shutil.rmtree(home / "data", ignore_errors=True)  # the previous stack's samples
    home.mkdir(parents=True, exist_ok=True)
    config = home / "prometheus.yml"
    config.write_text(scrape_config(args.target), encoding="utf-8")
    cmd = [
        args.binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address={args.listen}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
    ]
    os.execv(cmd[0], cmd)
    return 1  # pragma: no cover (execv does not return)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
