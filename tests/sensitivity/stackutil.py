"""A reference stack for catalogue tests: reuse a running one, or start one on free ports."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.stacks import free_base_port

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"
REUSE_ENV = "CHAOS_REC_CATALOGUE_STATE_DIR"  # a live stack's state dir to reuse (not stopped)


@contextlib.contextmanager
def catalogue_stack(tmp: Path) -> Iterator[Path]:
    """Yield the state dir of a live reference stack (started here and stopped after, unless reused)."""
    from chaos_rec import stack

    reuse = os.environ.get(REUSE_ENV)
    if reuse:
        stack.load_state(Path(reuse))  # raises StackNotRunning with a clear line
        yield Path(reuse)
        return
    sdir = tmp / "state"
    cfg = stack.StackConfig(
        state_dir=sdir, base_port=free_base_port(), toxiproxy_port=free_base_port() + 5
    )
    stack.up(cfg)
    try:
        yield sdir
    finally:
        stack.down(sdir)


def resilience_maps(sdir: Path) -> dict[str, dict[str, Any]]:
    """GET /admin/resilience of the gateway and of every replica."""
    from chaos_rec.backends.net import admin_request
    from chaos_rec.extconfig import ExtConfig
    from chaos_rec.targets import load_deployment

    dep = load_deployment(ExtConfig.from_ctk({"chaos_rec_state_dir": str(sdir)}))
    urls = {"gateway": dep.gateway_url} | {r.name: r.http_url for r in dep.replicas if r.http_url}
    out: dict[str, dict[str, Any]] = {}
    for name, url in urls.items():
        status, data = admin_request(
            str(url), "GET", "/admin/resilience", token=dep.admin_token, timeout=5.0
        )
        assert status == 200 and isinstance(data, dict), f"{name}: /admin/resilience {status}"
        out[name] = data
    return out


@contextlib.contextmanager
def switched_off(sdir: Path, switches: dict[str, dict[str, bool]]) -> Iterator[None]:
    """Switch mechanisms off ({target: {mechanism: False}}), always back on and verified after."""
    from chaos_rec.actions import reset_resilience, set_resilience

    conf = {"chaos_rec_state_dir": str(sdir)}
    try:
        for target, mechs in switches.items():
            set_resilience(mechs, target, configuration=conf)
        yield
    finally:
        for target in ("gateway", "replicas"):
            reset_resilience(target, configuration=conf)
        off = {
            name: sorted(k for k, v in m.items() if v is not True)
            for name, m in resilience_maps(sdir).items()
        }
        assert not any(off.values()), f"mechanisms still off after the test: {off}"
