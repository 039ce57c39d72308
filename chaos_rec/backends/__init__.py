"""Backends of the drill seams (``chaos_rec.core.seams``), chosen per deployment.

Today every seam has the reference stack's backend (``chaos_rec.backends.reference``) and links
go through any Toxiproxy-API server; a deployment file that names other backends comes with the
any-deployment work. The doors call these and hand the seams to the core.
"""

from __future__ import annotations

from chaos_rec.core.seams import FeatureData, Links, Processes, Rollout, Traffic
from chaos_rec.core.target import Deployment

__all__ = ["data", "links", "processes", "rollout", "traffic"]


def traffic(dep: Deployment, timeout_s: float) -> Traffic:
    """Load and quality replay for the deployment's API."""
    from chaos_rec.backends.reference import GatewayTraffic

    return GatewayTraffic(dep, timeout_s)


def processes(dep: Deployment) -> Processes:
    """Replica processes (the reference supervisor)."""
    from chaos_rec.backends.reference import SupervisorProcesses

    return SupervisorProcesses(dep)


def links(dep: Deployment, timeout_s: float) -> Links:
    """Network links through the deployment's fault proxy (host on the allowlist)."""
    from chaos_rec.toxiproxy.client import ToxiproxyClient

    url = dep.require_toxiproxy()
    dep.check_host(url)
    return ToxiproxyClient(url, timeout=timeout_s)


def data(dep: Deployment, timeout_s: float) -> FeatureData:
    """The feature store (Redis, restored by materialising from the bundle)."""
    from chaos_rec.backends.reference import RedisFeatureData

    return RedisFeatureData(dep, timeout_s)


def rollout(dep: Deployment, timeout_s: float, admin_token: str | None = None) -> Rollout:
    """Model versions on the replicas (the reference server's admin reload)."""
    from chaos_rec.backends.reference import ReferenceRollout

    return ReferenceRollout(dep, timeout_s, admin_token)
