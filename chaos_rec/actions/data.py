"""Data faults: lose the feature store's data (and re-materialise), push a bad model bundle."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from chaos_rec.actions._common import Cfg, forget, mark, remember, setup
from chaos_rec.errors import ConfigError, FaultError
from chaos_rec.extconfig import ExtConfig
from chaos_rec.targets import Deployment, ReplicaTarget, admin_request

__all__ = [
    "push_bundle",
    "push_corrupt_bundle",
    "rematerialize_features",
    "restart_redis_empty",
    "restore_bundle",
]


def _dbsize(url: str, timeout: float) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return int(client.dbsize())
    except redis.RedisError as exc:
        raise FaultError(f"cannot read the feature store at {url}: {exc}") from exc
    finally:
        client.close()


def restart_redis_empty(*, configuration: Cfg = None, secrets: Cfg = None) -> dict[str, Any]:
    """Feature-store data loss: restart Redis with its data wiped; verifies it holds no key."""
    from chaos_rec.stack import restart_component

    cfg, dep = setup(configuration, secrets)
    sdir = dep.require_managed("restart_redis_empty")
    if not dep.redis_url:
        raise ConfigError("the deployment names no redis URL")
    before = _dbsize(dep.redis_url, cfg.timeout_s)
    remember(
        "redis:wiped",
        "re-materialise the feature store",
        lambda: rematerialize_features(configuration=configuration, secrets=secrets),
    )
    restart_component("redis", wipe=True, state_dir=sdir)
    after = _dbsize(dep.redis_url, cfg.timeout_s)
    if after != 0:
        raise FaultError(f"redis restarted but still holds {after} keys (wipe did not happen)")
    mark(cfg, "fault", "restart_redis_empty")
    return {"keys_before": before, "keys_after": after}


def _materialize(dep: Deployment, cfg: ExtConfig, verify_only: bool, timeout_s: float) -> str:
    cmd = dep.materialize_command(verify_only=verify_only)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise FaultError(f"`{' '.join(cmd[1:4])}` did not finish within {timeout_s:g}s") from exc
    out = (proc.stdout + proc.stderr).strip().splitlines()
    last = out[-1] if out else ""
    if proc.returncode != 0:
        raise FaultError(
            f"`training materialize{' --verify-only' if verify_only else ''}` "
            f"exited {proc.returncode}: {last}"
        )
    return last


def rematerialize_features(
    timeout_s: float = 300.0, *, configuration: Cfg = None, secrets: Cfg = None
) -> dict[str, Any]:
    """Re-materialise user features into Redis (`python -m training materialize`); verifies."""
    cfg, dep = setup(configuration, secrets)
    t0 = time.monotonic()
    summary = _materialize(dep, cfg, False, timeout_s)
    check = _materialize(dep, cfg, True, timeout_s)
    forget("redis:wiped")
    mark(cfg, "recovery", "rematerialize_features")
    keys = _dbsize(dep.redis_url or "", cfg.timeout_s)
    return {
        "seconds": round(time.monotonic() - t0, 3),
        "keys": keys,
        "summary": summary,
        "verify": check,
    }


def _serving_version(rep: ReplicaTarget, cfg: ExtConfig) -> str | None:
    if not rep.http_url:
        return None
    status, data = admin_request(
        rep.http_url, "GET", "/v2/models/recommender", token=None, timeout=cfg.timeout_s
    )
    if status != 200 or not isinstance(data, dict):
        return None
    params = data.get("parameters") or {}
    version = params.get("model_version") or (data.get("versions") or [None])[0]
    return str(version) if version else None


def _push(rep: ReplicaTarget, dep: Deployment, cfg: ExtConfig, bundle: Path) -> tuple[int, Any]:
    if not rep.http_url:
        raise ConfigError(f"{rep.name} has no admin URL (http_url) in the deployment")
    dep.check_host(rep.http_url)
    status, data = admin_request(
        rep.http_url,
        "POST",
        "/admin/reload",
        token=cfg.admin_token or dep.admin_token,
        body={"bundle": str(bundle)},
        timeout=120.0,
    )
    if status in (401, 403):
        raise FaultError(
            f"{rep.name} rejected the admin token ({status}): set secret chaos_rec_admin_token"
        )
    if status not in (200, 409):
        raise FaultError(f"{rep.name} answered {status} to /admin/reload: {data}")
    return status, data


def push_bundle(
    bundle: str,
    target: str = "replica:0",
    expect: str = "any",
    *,
    configuration: Cfg = None,
    secrets: Cfg = None,
) -> dict[str, Any]:
    """Push a model bundle to a replica (hot reload); expect 'accepted', 'refused' or 'any'."""
    if expect not in ("any", "accepted", "refused"):
        raise ConfigError(f"expect must be any, accepted or refused, got {expect!r}")
    path = Path(bundle).expanduser().absolute()
    if not path.is_dir():
        raise ConfigError(f"bundle folder not found: {path}")
    cfg, dep = setup(configuration, secrets)
    rep = dep.replica(target)
    before = _serving_version(rep, cfg)
    status, data = _push(rep, dep, cfg, path)
    after = _serving_version(rep, cfg)
    accepted = status == 200
    if (
        accepted
        and isinstance(data, dict)
        and data.get("model_version")
        and after is not None
        and str(data["model_version"]) != after
    ):
        raise FaultError(
            f"{rep.name} accepted the bundle but serves {after}, not {data['model_version']}"
        )
    if not accepted and before is not None and after != before:
        raise FaultError(f"{rep.name} refused the bundle but its model changed {before} -> {after}")
    if accepted and dep.bundle and path != dep.bundle.absolute():
        # remembered before any expectation is judged: an unexpectedly accepted bad
        # bundle must still be rolled back by rollback_all / the control
        remember(
            f"bundle:{rep.name}",
            f"restore the reference bundle on {rep.name}",
            lambda: restore_bundle(target, configuration=configuration, secrets=secrets),
        )
    mark(cfg, "fault", "push_bundle")
    if expect == "accepted" and not accepted:
        raise FaultError(f"{rep.name} refused bundle {path.name}: {data}")
    if expect == "refused" and accepted:
        raise FaultError(f"{rep.name} ACCEPTED bundle {path.name}, which should have been refused")
    return {
        "replica": rep.name,
        "status": status,
        "accepted": accepted,
        "model_version_before": before,
        "model_version_after": after,
        "response": data,
    }


def corrupt_copy(src: Path, dst: Path) -> Path:
    """Copy a bundle and corrupt its largest weight file (checksums no longer match)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    files = [p for p in dst.rglob("*") if p.is_file() and p.name != "manifest.json"]
    if not files:
        raise ConfigError(f"bundle {src} holds no file to corrupt")
    victim = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    if victim.suffix != ".safetensors" or not _corrupt_float_tensors(data):
        start = len(data) // 2
        for i in range(start, len(data), max(1, (len(data) - start) // 64)):
            data[i] ^= 0xFF
    victim.write_bytes(bytes(data))
    return dst


def _corrupt_float_tensors(data: bytearray) -> bool:
    """Flip an exponent bit in every 7th FP32 value (silent weight corruption); True if any.

    The file still parses and every shape is intact, so the bundle loads and warms up:
    only the manifest's checksums can tell that it is bad (and its answers are garbage).
    """
    try:
        size = int.from_bytes(data[:8], "little")
        header = json.loads(bytes(data[8 : 8 + size]))
    except (ValueError, UnicodeDecodeError):
        return False
    base = 8 + size
    touched = False
    for name, info in header.items():
        if name == "__metadata__" or not isinstance(info, dict) or info.get("dtype") != "F32":
            continue
        begin, end = info["data_offsets"]
        for off in range(base + begin, base + end, 4 * 7):
            data[off + 3] ^= 0x40  # high byte (little endian): exponent's top bit
            touched = True
    return touched


def push_corrupt_bundle(
    target: str = "replica:0",
    expect: str = "refused",
    *,
    configuration: Cfg = None,
    secrets: Cfg = None,
) -> dict[str, Any]:
    """Bad model push: send a corrupted copy of the bundle (expect: refused, accepted or any)."""
    cfg, dep = setup(configuration, secrets)
    if not dep.bundle:
        raise ConfigError("the deployment names no bundle to corrupt")
    ctx = cfg.run_context(create=True)
    bad = corrupt_copy(dep.bundle, ctx.run_dir / "corrupt_bundle")
    return push_bundle(str(bad), target, expect, configuration=configuration, secrets=secrets)


def restore_bundle(
    target: str = "replica:0", *, configuration: Cfg = None, secrets: Cfg = None
) -> dict[str, Any]:
    """Push the deployment's reference bundle back to a replica; verifies it serves again."""
    cfg, dep = setup(configuration, secrets)
    if not dep.bundle:
        raise ConfigError("the deployment names no reference bundle")
    rep = dep.replica(target)
    status, data = _push(rep, dep, cfg, dep.bundle.absolute())
    if status != 200:
        raise FaultError(f"{rep.name} refused the reference bundle: {data}")
    forget(f"bundle:{rep.name}")
    mark(cfg, "recovery", "restore_bundle")
    return {"replica": rep.name, "model_version": _serving_version(rep, cfg)}
