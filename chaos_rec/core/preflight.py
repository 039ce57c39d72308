"""Preflight: check a target for real before (or instead of) a drill — what ``--drill-dry`` runs.

The gateway answers a real request through the traffic adapter, the fault proxy answers and holds every link the drill names, and every
replica the drill names resolves. Each failed check is one line; nothing is injected.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from chaos_rec.core.seams import Links, Traffic
from chaos_rec.core.target import Deployment
from chaos_rec.errors import ChaosRecError

__all__ = ["first_user", "named_targets", "preflight"]

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


def first_user(dep: Deployment) -> int | None:
    """A user id the load would send: the hold-out file's first, else the file's users list."""
    if dep.holdout is not None and dep.holdout.is_file():
        try:
            rows = json.loads(dep.holdout.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            rows = []
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and isinstance(row.get("user_id"), int):
                return int(row["user_id"])
    return dep.users[0] if dep.users else None


def preflight(
    dep: Deployment,
    names: list[str],
    links: Links | None,
    timeout: float = 2.0,
    traffic: Traffic | None = None,
) -> list[str]:
    """The checks that failed, one line each (empty when the target is ready for the drill).

    With ``traffic``, the deployment must also answer one real request for a user the load would
    send, read through its adapter (items, and the marker if it has one).
    """
    problems: list[str] = []
    try:
        why = _answers(dep.gateway(), timeout)  # allowlisted before it is reached
    except ChaosRecError as exc:
        return [str(exc)]
    if why is not None:
        problems.append(f"gateway {dep.gateway_url} does not answer ({why})")
    elif traffic is not None:
        user = first_user(dep)
        if user is None:
            problems.append("no user ids to send: name a holdout file or users in the deployment")
        elif traffic.recommend(user, 10) is None:
            problems.append(
                f"gateway {dep.gateway_url} gave no readable recommendation for user {user} "
                "(not a 200 with the item ids its traffic adapter reads)"
            )
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
