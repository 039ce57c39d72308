"""Data faults: lose the feature store's data (and re-materialise), push a bad model bundle."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from chaos_rec import backends
from chaos_rec.actions._common import Cfg, ledger, mark, setup
from chaos_rec.errors import ConfigError, FaultError

__all__ = [
    "push_bundle",
    "push_corrupt_bundle",
    "rematerialize_features",
    "restart_redis_empty",
    "restore_bundle",
]


def restart_redis_empty(*, configuration: Cfg = None, secrets: Cfg = None) -> dict[str, Any]:
    """Feature-store data loss: restart Redis with its data wiped; verifies it holds no key."""
    cfg, dep = setup(configuration, secrets)
    store = backends.data(dep, cfg.timeout_s, wipe="restart_redis_empty")
    before = store.size()
    ledger().remember(
        "redis:wiped",
        "re-materialise the feature store",
        lambda: rematerialize_features(configuration=configuration, secrets=secrets),
    )
    store.wipe()
    after = store.size()
    if after != 0:
        raise FaultError(f"redis restarted but still holds {after} keys (wipe did not happen)")
    mark(cfg, "fault", "restart_redis_empty")
    return {"keys_before": before, "keys_after": after}


def rematerialize_features(
    timeout_s: float = 300.0, *, configuration: Cfg = None, secrets: Cfg = None
) -> dict[str, Any]:
    """Re-materialise user features into Redis (`python -m training materialize`); verifies."""
    cfg, dep = setup(configuration, secrets)
    store = backends.data(dep, cfg.timeout_s)
    t0 = time.monotonic()
    summary = store.restore(timeout_s)
    if not store.verify(timeout_s):
        raise FaultError("`training materialize --verify-only` exited 1: the store still differs")
    ledger().forget("redis:wiped")
    mark(cfg, "recovery", "rematerialize_features")
    return {
        "seconds": round(time.monotonic() - t0, 3),
        "keys": store.size(),
        "summary": summary,
        "verify": "consistent",
    }


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
    models = backends.rollout(dep, cfg.timeout_s, cfg.admin_token)
    before = models.version(rep.name)
    accepted, data = models.push(rep.name, path)
    after = models.version(rep.name)
    status = 200 if accepted else 409
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
    reference = models.reference_bundle()
    if accepted and reference is not None and path != reference:
        # remembered before any expectation is judged: an unexpectedly accepted bad
        # bundle must still be rolled back by rollback_all / the control
        ledger().remember(
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
    models = backends.rollout(dep, cfg.timeout_s, cfg.admin_token)
    reference = models.reference_bundle()
    if reference is None:
        raise ConfigError("the deployment names no reference bundle")
    rep = dep.replica(target)
    accepted, data = models.push(rep.name, reference)
    if not accepted:
        raise FaultError(f"{rep.name} refused the reference bundle: {data}")
    ledger().forget(f"bundle:{rep.name}")
    mark(cfg, "recovery", "restore_bundle")
    return {"replica": rep.name, "model_version": models.version(rep.name)}
