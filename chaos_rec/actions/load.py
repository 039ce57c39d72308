"""Load actions: measure the deployment's capacity in this run, spike the load, end the spike.

The running load (Locust, started by the control) reads its level from ``load_level.json`` in
the run dir: ``{"multiplier": m}`` scales the configured rate; ``"closed": n`` makes n users
send back to back for a capacity probe. Each action verifies the generator applied the level.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Final

from chaos_rec.actions._common import Cfg, ledger, mark
from chaos_rec.core.rundir import RunContext
from chaos_rec.errors import ConfigError, FaultError
from chaos_rec.extconfig import ext_config

__all__ = ["CAPACITY_FILE", "end_spike", "measure_capacity", "spike_load"]

CAPACITY_FILE: Final = "capacity.json"
LEVEL_FILE: Final = "load_level.json"
_RELATIVE: Final = ("rate", "capacity")


def _rows_since(ctx: RunContext, since: float) -> list[dict[str, Any]]:
    return [dict(r) for r in ctx.timeline() if int(r["t"]) >= int(since)]


def _apply(ctx: RunContext, level: dict[str, Any], applied: str) -> None:
    """Write the load level and wait until the generator's rows show it (5 s at most)."""
    since = time.time()
    ctx.write_json(LEVEL_FILE, level)
    closed = int(level.get("closed") or 0)
    deadline = time.monotonic() + 5.0
    while True:
        rows = _rows_since(ctx, since)
        if any(
            float(r.get("level", 0)) == float(level["multiplier"])
            and int(r.get("closed") or 0) == closed
            for r in rows
        ):
            return
        if time.monotonic() > deadline:
            raise FaultError(f"the load runner did not pick up {applied} within 5s")
        time.sleep(0.2)


def _running(configuration: Cfg, secrets: Cfg) -> tuple[RunContext, Any]:
    cfg = ext_config(configuration, secrets)
    ctx = cfg.run_context()
    if not ctx.timeline():
        raise FaultError("no load is running in this run: add the chaos_rec.controls control")
    return ctx, cfg


def _base_rps(ctx: RunContext) -> float:
    load = ctx.read_json("load_config.json") or {}
    try:
        return float(load["rps"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FaultError("the running load wrote no load_config.json with its rate") from exc


def measure_capacity(
    concurrency: int = 8, duration_s: float = 4.0, *, configuration: Cfg = None, secrets: Cfg = None
) -> dict[str, Any]:
    """Capacity probe: `concurrency` clients back to back for `duration_s`; answered requests/s."""
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not 1 <= concurrency <= 256
    ):
        raise ConfigError(f"concurrency must be an integer within [1, 256], got {concurrency!r}")
    if isinstance(duration_s, bool) or not 3 <= float(duration_s) <= 60:
        raise ConfigError(f"duration_s must be within [3, 60] s, got {duration_s!r}")
    ctx, _ = _running(configuration, secrets)
    ledger().remember(
        "capacity-probe",
        "end the capacity probe",
        lambda: ctx.write_json(LEVEL_FILE, {"multiplier": 1.0}),
    )
    since = time.time()
    try:
        _apply(ctx, {"multiplier": 1.0, "closed": concurrency}, f"a probe of {concurrency}")
        time.sleep(float(duration_s))
    finally:
        ctx.write_json(LEVEL_FILE, {"multiplier": 1.0})
        ledger().forget("capacity-probe")
    _apply(ctx, {"multiplier": 1.0}, "the configured level after the probe")
    rows = [r for r in _rows_since(ctx, since) if int(r.get("closed") or 0) == concurrency]
    full = rows[1:-1]  # the first and last probe seconds are partial
    if len(full) < 2:
        raise FaultError(f"the capacity probe measured {len(full)} full second(s); need 2")
    answered = [
        sum(int(n) for c, n in (r.get("status") or {}).items() if c.startswith("2")) for r in full
    ]
    capacity = float(statistics.mean(answered))
    if capacity <= 0:
        raise FaultError(f"the capacity probe got no answer from the deployment in {len(full)} s")
    result = {
        "capacity_rps": round(capacity, 1),
        "concurrency": concurrency,
        "seconds": len(full),
        "answered_per_s": answered,
        "gen_lag_ms_max": max(float(r.get("gen_lag_ms") or 0.0) for r in full),
        "t": [int(full[0]["t"]), int(full[-1]["t"]) + 1],
    }
    ctx.write_json(CAPACITY_FILE, result)
    return result


def spike_load(
    multiplier: float = 3.0,
    *,
    relative_to: str = "rate",
    configuration: Cfg = None,
    secrets: Cfg = None,
) -> dict[str, Any]:
    """Load spike: `multiplier` x the configured rate, or x the capacity measured in this run."""
    if (
        isinstance(multiplier, bool)
        or not isinstance(multiplier, int | float)
        or not 0 < multiplier <= 100
    ):
        raise ConfigError(f"multiplier must be within (0, 100], got {multiplier!r}")
    if relative_to not in _RELATIVE:
        raise ConfigError(f"relative_to must be one of {', '.join(_RELATIVE)}, got {relative_to!r}")
    ctx, cfg = _running(configuration, secrets)
    level = float(multiplier)
    out: dict[str, Any] = {"multiplier": level}
    if relative_to == "capacity":
        measured = ctx.read_json(CAPACITY_FILE)
        if not measured:
            raise FaultError("no capacity measured in this run: call measure_capacity first")
        target = float(multiplier) * float(measured["capacity_rps"])
        level = round(target / _base_rps(ctx), 3)
        if not 0 < level <= 100:
            raise FaultError(
                f"a spike to {target:.0f} requests/s is x{level:g} the load (max x100)"
            )
        out = {"multiplier": level, "target_rps": round(target, 1), **measured}
    # mark first: the runner picks the level up within ~0.2 s, so no second of the new load is
    # ever labelled with the old phase
    mark(cfg, "fault", "spike_load")
    ledger().remember(
        "spike",
        "end the load spike",
        lambda: end_spike(configuration=configuration, secrets=secrets),
    )
    _apply(ctx, {"multiplier": level}, f"level x{level:g}")
    return out


def end_spike(*, configuration: Cfg = None, secrets: Cfg = None) -> dict[str, Any]:
    """Bring the load back to its configured rate."""
    ctx, cfg = _running(configuration, secrets)
    mark(cfg, "recovery", "end_spike")
    _apply(ctx, {"multiplier": 1.0}, "level x1")
    ledger().forget("spike")
    return {"multiplier": 1.0}
