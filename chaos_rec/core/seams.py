"""The seams of a drill target: what a drill needs of a deployment, one Protocol per concern.

Each seam has backends (``chaos_rec.backends``); the reference stack implements every one. A
deployment names its backends and endpoints; the doors (Chaos Toolkit activities, pytest
fixtures) wire them, and the core only ever sees these Protocols (unit tests pass fakes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "Answer",
    "FeatureData",
    "Links",
    "LoadHandle",
    "Processes",
    "Rollout",
    "Traffic",
]


@dataclass(frozen=True)
class Answer:
    """What the deployment answered for one user: item ids, best first, and a degraded tier."""

    items: tuple[int, ...]
    tier: str = "none"  # "none" when the model answered; a fallback tier's name otherwise


class LoadHandle(Protocol):
    """A running load generator writing one timeline row per second into the run dir."""

    def stop(self) -> None:
        """Stop the load (flushing its last rows)."""
        ...


class Traffic(Protocol):
    """Requests for users: the load generator's and the quality replay's."""

    def start_load(
        self,
        run_dir: Path,
        *,
        rps: float,
        users: int,
        seed: int,
        timeout_s: float,
        workers: int = 0,
    ) -> LoadHandle:
        """Start steady load into ``run_dir`` (returns once its first row is written); with
        ``workers`` > 0, that many generator processes under one master."""
        ...

    def recommend(self, user_id: int, k: int, query: str | None = None) -> Answer | None:
        """One request; None when the deployment did not answer it successfully."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class Processes(Protocol):
    """Replica processes: lose, hang, resume one, and wait until it serves again."""

    def pid(self, replica: str) -> int:
        """The replica's process id (FaultError when it has none running)."""
        ...

    def kill(self, replica: str) -> None:
        """SIGKILL the replica (its supervisor is expected to restart it)."""
        ...

    def hang(self, replica: str) -> None:
        """SIGSTOP the replica."""
        ...

    def resume(self, replica: str) -> None:
        """SIGCONT the replica."""
        ...

    def wait_restored(self, replica: str, timeout_s: float) -> float:
        """Block until the replica is ready again; returns the seconds waited."""
        ...

    def state(self, replica: str, pid: int) -> str:
        """The /proc state letter of the replica's process ``pid`` (``T`` stopped, ``X`` gone)."""
        ...


class Links(Protocol):
    """Network links: toxics and cuts, in the Toxiproxy API's terms.

    Backends: a Toxiproxy-API fault proxy (``chaos_rec.toxiproxy.client``), and Chaos Mesh
    (``chaos_rec.backends.chaosmesh``). ``get_proxy(name)["listen"]`` is the address a drill
    connects through to check a fault's effect; None where the backend checks each fault itself
    before ``add_toxic``, ``disable``, ``remove_toxic`` and ``enable`` return (Chaos Mesh: the
    fault object's status).
    """

    def get_proxy(self, name: str) -> dict[str, Any]: ...
    def toxics(self, proxy: str) -> list[dict[str, Any]]: ...
    def add_toxic(
        self,
        proxy: str,
        type: str,
        attributes: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> dict[str, Any]: ...
    def remove_toxic(self, proxy: str, name: str) -> None: ...
    def enable(self, name: str) -> dict[str, Any]: ...
    def disable(self, name: str) -> dict[str, Any]: ...


class FeatureData(Protocol):
    """The online feature store's data: count, wipe, restore and verify it."""

    def size(self) -> int:
        """Number of keys held."""
        ...

    def wipe(self) -> None:
        """Lose every key (for Redis: restart it empty)."""
        ...

    def restore(self, timeout_s: float) -> str:
        """Re-materialise the features; returns the restore command's summary line."""
        ...

    def verify(self, timeout_s: float) -> bool:
        """True when the store matches the offline features."""
        ...


class Rollout(Protocol):
    """Model versions on a replica: push one, read the one served, restore the reference."""

    def version(self, replica: str) -> str | None:
        """The model version the replica serves (None when it does not say)."""
        ...

    def push(self, replica: str, bundle: Path) -> tuple[bool, Mapping[str, Any] | str]:
        """Push a bundle; (accepted, the server's answer)."""
        ...

    def reference_bundle(self) -> Path | None:
        """The bundle to restore after a bad push."""
        ...


HoldoutRows = Sequence[Mapping[str, Any]]
