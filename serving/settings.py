"""Typed, frozen settings of the model server and the gateway, built once from argv."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import reference_contract as contract
from serving.errors import BadRequest

# the switch and routing names are shared with chaos-rec's stack launcher: one copy, there
SERVER_MECHANISMS = contract.SERVER_MECHANISMS
GATEWAY_MECHANISMS = contract.GATEWAY_MECHANISMS
ROUTINGS = contract.GATEWAY_ROUTINGS  # the gateway's --routing


class Switches:
    """Runtime resilience switches (all on by default); the only mutable piece of config."""

    def __init__(self, names: Iterable[str], disabled: Iterable[str] = ()) -> None:
        self._on = dict.fromkeys(names, True)
        self.update(dict.fromkeys(disabled, False))

    def __getitem__(self, name: str) -> bool:
        return self._on[name]

    def as_dict(self) -> dict[str, bool]:
        """The current map name → on/off."""
        return dict(self._on)

    def update(self, changes: Mapping[str, object]) -> dict[str, bool]:
        """Validate all changes first, then apply them (never half-applied)."""
        for key, value in changes.items():
            if key not in self._on:
                raise BadRequest(f"unknown mechanism {key!r} (known: {', '.join(self._on)})")
            if not isinstance(value, bool):
                raise BadRequest(f"mechanism {key!r} must be true or false, got {value!r}")
        for key, value in changes.items():
            self._on[key] = bool(value)
        return self.as_dict()


def _mechs(text: str, known: Sequence[str]) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for n in names:
        if n not in known:
            raise argparse.ArgumentTypeError(f"unknown mechanism {n!r} (known: {', '.join(known)})")
    return names


def _positive(kind: type[int] | type[float], at_least: float | None = None) -> argparse._ActionType:
    """An argparse type: a number > 0 (or >= `at_least`)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
        if at_least is not None and not value >= at_least:
            raise argparse.ArgumentTypeError(f"must be >= {at_least:g}, got {text}")
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


@dataclass(frozen=True)
class ServerSettings:
    """Model server settings (see docs/contracts.md, "Model server")."""

    bundle: Path
    http_port: int
    grpc_port: int
    redis_url: str
    name: str = "replica-0"
    host: str = "127.0.0.1"
    device: str = "auto"
    max_batch_size: int = 32
    max_queue_delay_ms: float = 2.0
    queue_capacity: int = 256
    feature_timeout_ms: float = 25.0
    request_timeout_ms: float = 1000.0
    breaker_failures: int = 5
    breaker_reset_s: float = 2.0
    cache_size: int = 100_000
    max_body_bytes: int = 1 << 20
    max_k: int = 100
    disabled: tuple[str, ...] = ()
    admin_token: str | None = None
    threads: int = 0
    model_process: bool = True

    @classmethod
    def from_argv(cls, argv: Sequence[str] | None = None) -> ServerSettings:
        """Parse `python -m serving.model_server` arguments (exits 2 with one line on error)."""
        p = argparse.ArgumentParser(prog="python -m serving.model_server")
        p.add_argument("--bundle", type=Path, required=True)
        p.add_argument("--http-port", type=int, required=True)
        p.add_argument("--grpc-port", type=int, required=True)
        p.add_argument("--redis-url", required=True)
        p.add_argument("--name", default="replica-0")
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
        p.add_argument("--max-batch-size", type=_positive(int), default=32)
        p.add_argument("--max-queue-delay-ms", type=_positive(float), default=2.0)
        p.add_argument("--queue-capacity", type=_positive(int), default=256)
        p.add_argument("--feature-timeout-ms", type=_positive(float), default=25.0)
        p.add_argument("--request-timeout-ms", type=_positive(float), default=1000.0)
        p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = auto)")
        p.add_argument(
            "--model-in-process",
            action="store_true",
            help="run forward passes on a thread of the server process, not in a model worker",
        )
        p.add_argument(
            "--disable", type=lambda t: _mechs(t, SERVER_MECHANISMS), default=(), metavar="MECH,..."
        )
        p.add_argument("--admin-token", default=os.environ.get("CHAOS_REC_ADMIN_TOKEN"))
        a = p.parse_args(argv)
        return cls(
            bundle=a.bundle,
            http_port=a.http_port,
            grpc_port=a.grpc_port,
            redis_url=a.redis_url,
            name=a.name,
            host=a.host,
            device=a.device,
            max_batch_size=a.max_batch_size,
            max_queue_delay_ms=a.max_queue_delay_ms,
            queue_capacity=a.queue_capacity,
            feature_timeout_ms=a.feature_timeout_ms,
            request_timeout_ms=a.request_timeout_ms,
            disabled=a.disable,
            admin_token=a.admin_token,
            threads=a.threads,
            model_process=not a.model_in_process,
        )


@dataclass(frozen=True)
class GatewaySettings:
    """Gateway settings (see docs/contracts.md, "Gateway")."""

    port: int
    replicas: dict[str, str]
    replica_health: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    deadline_ms: float = 250.0
    hedge_after_ms: float = 0.0  # 0 = adaptive (p95 of recent calls)
    eject_after_failures: int = 3
    eject_min_s: float = 1.0
    health_interval_s: float = 0.5
    disabled: tuple[str, ...] = ()
    admin_token: str | None = None
    max_k: int = 100
    # shed (switch `shedding`) beyond this many requests in progress, or this event-loop lag
    max_inflight: int = 64
    max_loop_lag_ms: float = 30.0
    # `affinity`: a user's calls go to the same replica (rendezvous hashing with bounded
    # loads: a replica with more than balance_factor x the mean calls in flight is passed
    # over); `round-robin`: each call to the next replica
    routing: str = "affinity"
    balance_factor: float = 1.25

    @classmethod
    def from_argv(cls, argv: Sequence[str] | None = None) -> GatewaySettings:
        """Parse `python -m serving.gateway` arguments (exits 2 with one line on error)."""
        p = argparse.ArgumentParser(prog="python -m serving.gateway")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--replicas", type=_pairs, required=True, metavar="NAME=host:port,...")
        p.add_argument("--replica-health", type=_pairs, default={}, metavar="NAME=url,...")
        p.add_argument("--deadline-ms", type=_positive(float), default=250.0)
        p.add_argument("--hedge-after-ms", type=float, default=0.0)
        p.add_argument("--max-inflight", type=_positive(int), default=64)
        p.add_argument("--max-loop-lag-ms", type=_positive(float), default=30.0)
        p.add_argument("--routing", choices=ROUTINGS, default="affinity")
        p.add_argument("--balance-factor", type=_positive(float, at_least=1), default=1.25)
        p.add_argument(
            "--disable",
            type=lambda t: _mechs(t, GATEWAY_MECHANISMS),
            default=(),
            metavar="MECH,...",
        )
        p.add_argument("--admin-token", default=os.environ.get("CHAOS_REC_ADMIN_TOKEN"))
        a = p.parse_args(argv)
        if not a.replicas:
            p.error("--replicas names no replica")
        return cls(
            port=a.port,
            host=a.host,
            replicas=a.replicas,
            replica_health=a.replica_health,
            deadline_ms=a.deadline_ms,
            hedge_after_ms=a.hedge_after_ms,
            max_inflight=a.max_inflight,
            max_loop_lag_ms=a.max_loop_lag_ms,
            routing=a.routing,
            balance_factor=a.balance_factor,
            disabled=a.disable,
            admin_token=a.admin_token,
        )


def _pairs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, addr = part.partition("=")
        if not sep or not name or not addr:
            raise argparse.ArgumentTypeError(f"expected NAME=ADDRESS, got {part!r}")
        out[name] = addr
    return out
