"""Link faults: toxics of every Toxiproxy type, cut and restore.

Through a fault proxy each fault is checked by connecting through the link's ``listen``
address; a backend without one (Chaos Mesh) has checked it from the fault's status before it
returns, and what it observed is reported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from chaos_rec import backends
from chaos_rec.actions._common import Cfg, ledger, mark, setup
from chaos_rec.backends.net import connect_refused, link_round_trip, wait_until
from chaos_rec.boundary import translating
from chaos_rec.core.seams import Links
from chaos_rec.core.target import Deployment
from chaos_rec.errors import ChaosRecError, FaultError, ProxyError
from chaos_rec.extconfig import ExtConfig
from chaos_rec.toxiproxy.model import TOXIC_ATTRIBUTES, check_toxic

__all__ = ["TOXIC_TYPES", "add_toxic", "clear_link", "cut_link", "remove_toxic", "restore_link"]

TOXIC_TYPES = tuple(TOXIC_ATTRIBUTES)  # the fault proxy's table of toxic types is the one copy


def _proxy(dep: Deployment, cfg: ExtConfig) -> Links:
    return backends.links(dep, cfg.timeout_s)


def _listen(dep: Deployment, client: Links, link: str) -> str | None:
    """The address to probe the link through; None where the backend verifies faults itself."""
    if dep.links.get(link, {}).get("listen"):
        return str(dep.links[link]["listen"])
    listen = client.get_proxy(link).get("listen")
    return str(listen) if listen else None


def _best_rtt(addr: str, tries: int = 3, timeout: float = 3.0) -> float | None:
    """Best of a few round trips through a link; None when none answered."""
    best: float | None = None
    for _ in range(tries):
        try:
            rtt = link_round_trip(addr, timeout)
        except OSError:
            continue
        best = rtt if best is None else min(best, rtt)
    return best


def _verify_toxic(kind: str, attrs: Mapping[str, Any], addr: str, base: float | None) -> str:
    """Check a toxic's effect through the link; returns what was observed (raises if absent)."""
    if kind == "latency":
        want = float(attrs.get("latency", 0)) / 1000.0
        after = _best_rtt(addr, tries=2, timeout=want + 5.0)
        if base is None or after is None:
            return "listed (link did not answer; effect not measurable)"
        if want > 0 and after - base < 0.5 * want:
            raise FaultError(
                f"latency toxic not in effect: round trip {after * 1000:.0f} ms vs "
                f"{base * 1000:.0f} ms before (wanted +{want * 1000:.0f} ms)"
            )
        return f"round trip {base * 1000:.1f} -> {after * 1000:.1f} ms"
    if kind in ("timeout", "reset_peer") and base is not None:
        try:
            link_round_trip(addr, 0.5)
        except OSError as exc:
            return f"no answer through the link ({type(exc).__name__})"
        raise FaultError(f"{kind} toxic not in effect: the link still answers")
    return "listed by the fault proxy"


def add_toxic(
    link: str,
    toxic_type: str = "latency",
    attributes: dict[str, Any] | None = None,
    name: str | None = None,
    stream: str = "downstream",
    toxicity: float = 1.0,
    *,
    configuration: Cfg = None,
    secrets: Cfg = None,
) -> dict[str, Any]:
    """Add a Toxiproxy toxic (latency, bandwidth, timeout, …) to a link; verifies its effect."""
    check_toxic("add_toxic", toxic_type, attributes, stream, toxicity)
    cfg, dep = setup(configuration, secrets)
    proxy_name = dep.link(link)
    client = _proxy(dep, cfg)
    tname = name or f"{toxic_type}_{stream}"
    attrs = dict(attributes or {})
    with translating(
        f"add_toxic {toxic_type} on link {proxy_name}",
        FaultError,
        verb="refused",
        rewrap=(ProxyError,),
    ):
        addr = _listen(dep, client, proxy_name)
        base = _best_rtt(addr) if addr is not None and toxicity >= 1.0 else None
        toxic = client.add_toxic(
            proxy_name, toxic_type, attrs, name=tname, stream=stream, toxicity=toxicity
        )
    try:
        if tname not in {t.get("name") for t in client.toxics(proxy_name)}:
            raise FaultError(f"toxic {tname} not listed on link {proxy_name} after adding it")
        if addr is None:  # the backend verified it before returning
            observed = str(toxic.get("observed") or "in effect, as the backend reports")
        else:
            observed = _verify_toxic(toxic_type, attrs, addr, base) if toxicity >= 1.0 else "listed"
    except BaseException:
        with contextlib.suppress(ChaosRecError):
            client.remove_toxic(proxy_name, tname)
        raise
    ledger().remember(
        f"toxic:{proxy_name}:{tname}",
        f"remove toxic {tname} from {proxy_name}",
        lambda: remove_toxic(link, tname, configuration=configuration, secrets=secrets),
    )
    mark(cfg, "fault", "add_toxic")
    return {"link": proxy_name, "toxic": toxic, "observed": observed}


def remove_toxic(
    link: str,
    name: str | None = None,
    toxic_type: str = "latency",
    stream: str = "downstream",
    *,
    configuration: Cfg = None,
    secrets: Cfg = None,
) -> dict[str, Any]:
    """Remove a toxic from a link (already gone counts as removed); verifies it is gone."""
    cfg, dep = setup(configuration, secrets)
    proxy_name = dep.link(link)
    client = _proxy(dep, cfg)
    tname = name or f"{toxic_type}_{stream}"
    with translating(
        f"remove_toxic {tname} on link {proxy_name}", FaultError, rewrap=(ProxyError,)
    ):
        present = tname in {t.get("name") for t in client.toxics(proxy_name)}
        if present:
            client.remove_toxic(proxy_name, tname)
        left = {t.get("name") for t in client.toxics(proxy_name)}
    if tname in left:
        raise FaultError(f"toxic {tname} still on link {proxy_name} after removing it")
    ledger().forget(f"toxic:{proxy_name}:{tname}")
    if present:  # a no-op (e.g. a rollback after the method removed it) starts no recovery
        mark(cfg, "recovery", "remove_toxic")
    return {"link": proxy_name, "removed": tname, "toxics_left": sorted(str(n) for n in left)}


def clear_link(link: str, *, configuration: Cfg = None, secrets: Cfg = None) -> dict[str, Any]:
    """Remove every toxic from a link and re-enable it."""
    cfg, dep = setup(configuration, secrets)
    proxy_name = dep.link(link)
    client = _proxy(dep, cfg)
    with translating(f"clear_link {proxy_name}", FaultError, rewrap=(ProxyError,)):
        removed = [str(t["name"]) for t in client.toxics(proxy_name)]
        for tname in removed:
            client.remove_toxic(proxy_name, tname)
        was_disabled = not client.get_proxy(proxy_name).get("enabled", True)
        client.enable(proxy_name)
    ledger().forget_where(
        lambda k: k.startswith(f"toxic:{proxy_name}:") or k == f"cut:{proxy_name}"
    )
    if removed or was_disabled:
        mark(cfg, "recovery", "clear_link")
    return {"link": proxy_name, "removed": removed, "re_enabled": was_disabled}


def cut_link(link: str, *, configuration: Cfg = None, secrets: Cfg = None) -> dict[str, Any]:
    """Take a link down (disable the proxy); verifies a connect is refused."""
    cfg, dep = setup(configuration, secrets)
    proxy_name = dep.link(link)
    client = _proxy(dep, cfg)
    with translating(f"cut_link {proxy_name}", FaultError, verb="refused", rewrap=(ProxyError,)):
        addr = _listen(dep, client, proxy_name)
        state = client.disable(proxy_name)
    if addr is not None and not wait_until(lambda: connect_refused(addr), 3.0, 0.05):
        client.enable(proxy_name)
        raise FaultError(f"link {proxy_name} still accepts connections on {addr} after disabling")
    ledger().remember(
        f"cut:{proxy_name}",
        f"restore link {proxy_name}",
        lambda: restore_link(link, configuration=configuration, secrets=secrets),
    )
    mark(cfg, "fault", "cut_link")
    if addr is None:
        return {"link": proxy_name, "listen": None, "observed": state.get("observed")}
    return {"link": proxy_name, "listen": addr, "refused": True}


def restore_link(link: str, *, configuration: Cfg = None, secrets: Cfg = None) -> dict[str, Any]:
    """Bring a cut link back (enable the proxy); verifies it accepts connections."""
    cfg, dep = setup(configuration, secrets)
    proxy_name = dep.link(link)
    client = _proxy(dep, cfg)
    with translating(f"restore_link {proxy_name}", FaultError, rewrap=(ProxyError,)):
        addr = _listen(dep, client, proxy_name)
        was_disabled = not client.get_proxy(proxy_name).get("enabled", True)
        client.enable(proxy_name)
    if addr is not None and not wait_until(lambda: not connect_refused(addr), 3.0, 0.05):
        raise FaultError(f"link {proxy_name} still refuses connections on {addr} after enabling")
    ledger().forget(f"cut:{proxy_name}")
    if was_disabled:
        mark(cfg, "recovery", "restore_link")
    if addr is None:
        return {"link": proxy_name, "listen": None, "observed": "the cut is gone"}
    return {"link": proxy_name, "listen": addr, "refused": False}
