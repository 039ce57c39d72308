"""Preflight: check a target for real before (or instead of) a drill — what ``--drill-dry`` runs.

The gateway answers, the fault proxy answers and holds every link the drill names, and every
replica the drill names resolves. Each failed check is one line; nothing is injected.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from chaos_rec.core.seams import Links
from chaos_rec.core.target import Deployment
from chaos_rec.errors import ChaosRecError

__all__ = ["named_targets", "preflight"]

_NAMED: Final = re.compile(r"^(replica|link):[A-Za-z0-9_.\-]+$")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def named_targets(experiment: Mapping[str, Any]) -> list[str]:
    """Every ``replica:<i>`` and ``link:<name>`` an experiment's activities name, in order."""
    found: dict[str, None] = {}
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    for part in (hypothesis.get("probes"), experiment.get("method"), experiment.get("rollbacks")):
        for activity in part or []:
            args = ((activity or {}).get("provider") or {}).get("arguments") or {}
            for text in _strings(args):
                if _NAMED.match(text):
                    found[text] = None
    return list(found)


def _answers(url: str, timeout: float) -> str | None:
    """None when something accepts a TCP connection at the URL's host and port, else why not."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def preflight(
    dep: Deployment, names: list[str], links: Links | None, timeout: float = 2.0
) -> list[str]:
    """The checks that failed, one line each (empty when the target is ready for the drill)."""
    problems: list[str] = []
    why = _answers(dep.gateway_url, timeout)
    if why is not None:
        problems.append(f"gateway {dep.gateway_url} does not answer ({why})")
    for name in (n for n in names if n.startswith("replica:")):
        try:
            dep.replica(name)
        except ChaosRecError as exc:
            problems.append(str(exc))
    wanted = [n for n in names if n.startswith("link:")]
    if not wanted:
        return problems
    if links is None:
        return [*problems, f"the drill names {wanted[0]} but the deployment names no fault proxy"]
    for name in wanted:
        try:
            link = dep.link(name)
            links.get_proxy(link)
        except ChaosRecError as exc:
            problems.append(f"{name}: {exc}")
    return problems
