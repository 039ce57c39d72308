"""The reference stack's Prometheus: finding the binary, its scrape config, its launcher.

The stack runs the Debian package's ``prometheus`` on loopback, scraping every component that
serves ``/metrics`` (model-server replicas, gateway, fault proxy) once a second, with its TSDB in
``<state_dir>/prometheus``. The supervisor starts it through
``python -m chaos_rec.stack.prometheus_launcher``, which writes the scrape config, clears the previous stack's samples and ``exec``s the
binary, so the supervised pid is Prometheus itself. A missing binary leaves the stack without
it (one line in ``stack status``), never a failed start.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from typing import Final

from chaos_rec.errors import ConfigError

__all__ = [
    "MISSING_LINE",
    "PROMETHEUS_DIR",
    "SCRAPE_INTERVAL_S",
    "find_prometheus_binary",
    "scrape_config",
]

SCRAPE_INTERVAL_S: Final = 1
PROMETHEUS_DIR: Final = "prometheus"  # under the state dir: config and TSDB, removed by down
MISSING_LINE: Final = (
    "prometheus not available: no prometheus binary on PATH (apt-get install prometheus); "
    "the stack runs without it and drills that need it are skipped"
)


def find_prometheus_binary(configured: str | None) -> str | None:
    """The prometheus to run: configured (ConfigError when absent), else PATH, else None."""
    if configured:
        found = shutil.which(configured)
        if not found:
            raise ConfigError(f"prometheus binary {configured!r} not found or not executable")
        return found
    return shutil.which("prometheus")


def scrape_config(targets: Sequence[tuple[str, str]]) -> str:
    """The scrape config (JSON, which Prometheus reads as YAML) for ``(component, url)`` pairs.

    Each component is one job named after it, with a ``component`` label, so a query can say
    ``{component="replica-1"}``.
    """
    jobs = []
    for name, url in targets:
        scheme, _, rest = url.partition("://")
        host, _, path = rest.partition("/")
        jobs.append(
            {
                "job_name": name,
                "scheme": scheme,
                "metrics_path": "/" + (path or "metrics"),
                "static_configs": [{"targets": [host], "labels": {"component": name}}],
            }
        )
    interval = f"{SCRAPE_INTERVAL_S}s"
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": jobs,
    }
    return json.dumps(config, indent=1) + "\n"
