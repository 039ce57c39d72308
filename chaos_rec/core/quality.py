"""Recommendation quality under a fault: a seeded replay of held-out interactions.

The healthy baseline is measured in the steady state; later measurements are judged as a ratio
to it (NDCG@k, or top-k agreement when the baseline hit too few held-out items to be stable).
Both land in the run dir's ``quality.json``, which the SLO engine reads.

A held-out row that carries a ``query`` (``python -m training holdout`` gives a seeded 30 % of
them one, from the held-out item's genre or title) is replayed as a search request, the others
as plain recommendations: the one quality ratio covers search answers too, and each
measurement also keeps the two kinds' figures apart (``by_kind``).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos_rec.core.rundir import RunContext
from chaos_rec.core.seams import Traffic
from chaos_rec.errors import ProbeError

__all__ = ["MIN_BASELINE_HITS", "agreement", "measure_baseline", "measure_ratio", "replay"]

MIN_BASELINE_HITS = 10  # below this the NDCG ratio is noise; use top-k agreement instead


def _holdout_rows(holdout: Path | None) -> list[dict[str, Any]]:
    if holdout is None or not holdout.is_file():
        raise ProbeError(
            f"no holdout file to replay ({holdout}); build it with `python -m training holdout`"
        )
    rows = [r for r in json.loads(holdout.read_text(encoding="utf-8")) if "target_item" in r]
    if not rows:
        raise ProbeError(f"holdout file {holdout} holds no interaction")
    return rows


def replay(
    traffic: Traffic, holdout: Path | None, sample: int, k: int, seed: int
) -> dict[str, Any]:
    """HR@k and NDCG@k of the deployment's answers for a seeded sample of held-out users."""
    rows = _holdout_rows(holdout)
    picked = random.Random(seed).sample(rows, min(sample, len(rows)))
    kinds = {kind: _Tally() for kind in ("recommend", "search")}
    tiers: dict[str, int] = {}
    lists: dict[str, list[int]] = {}
    t0 = time.time()
    try:
        for row in picked:
            query = row.get("query") if isinstance(row.get("query"), str) else None
            tally = kinds["search" if query else "recommend"]
            tally.users.append(str(row["user_id"]))
            answer = traffic.recommend(int(row["user_id"]), k, query)
            if answer is None:
                continue
            tally.answered += 1
            tiers[answer.tier] = tiers.get(answer.tier, 0) + 1
            items = list(answer.items[:k])
            lists[str(row["user_id"])] = items
            target = int(row["target_item"])
            if target in items:
                tally.hits += 1
                tally.ndcg += 1.0 / math.log2(items.index(target) + 2)
    finally:
        traffic.close()
    n = len(picked)
    hits = sum(t.hits for t in kinds.values())
    return {
        "t": time.time(),
        "duration_s": round(time.time() - t0, 3),
        "n": n,
        "answered": sum(t.answered for t in kinds.values()),
        f"hr@{k}": hits / n,
        f"ndcg@{k}": sum(t.ndcg for t in kinds.values()) / n,
        "hits": hits,
        "by_kind": {kind: t.figures(k) for kind, t in kinds.items() if t.users},
        "tiers": tiers,
        "lists": lists,
    }


@dataclass
class _Tally:
    """One kind of request in a replay: its users, answers, held-out hits and summed NDCG."""

    users: list[str] = field(default_factory=list)
    answered: int = 0
    hits: int = 0
    ndcg: float = 0.0

    def figures(self, k: int) -> dict[str, Any]:
        n = len(self.users)
        return {
            "n": n,
            "answered": self.answered,
            "hits": self.hits,
            f"hr@{k}": round(self.hits / n, 4),
            f"ndcg@{k}": round(self.ndcg / n, 4),
            "users": self.users,
        }


def agreement(now: Mapping[str, list[int]], base: Mapping[str, list[int]], k: int) -> float:
    """Mean share of each user's healthy top-k that is still recommended (0 for no answer)."""
    if not base:
        return 0.0
    total = sum(
        len(set(now.get(u, [])) & set(items)) / max(1, min(k, len(items)))
        for u, items in base.items()
    )
    return total / len(base)


def measure_baseline(
    ctx: RunContext, traffic: Traffic, holdout: Path | None, sample: int, k: int, seed: int
) -> dict[str, Any]:
    """Measure the healthy quality and store it as the run's baseline."""
    base = replay(traffic, holdout, sample, k, seed)
    if not base["answered"]:
        raise ProbeError(f"the gateway answered none of {base['n']} replayed requests: no baseline")
    data = ctx.quality() or {}
    data.update({"baseline": base, "sample": sample, "k": k})
    data.setdefault("measurements", [])
    ctx.write_quality(data)
    return base


def measure_ratio(ctx: RunContext, traffic: Traffic, holdout: Path | None, seed: int) -> float:
    """Quality now relative to the baseline (1.0 = no loss); recorded with the current phase."""
    data = ctx.quality() or {}
    base = data.get("baseline")
    if not base:
        raise ProbeError(
            "no quality baseline in this run: call the probe quality_baseline in the steady state first"
        )
    k = int(data.get("k", 10))
    now = replay(traffic, holdout, int(data.get("sample", 200)), k, seed)
    lists, base_lists = now.pop("lists"), base.get("lists") or {}
    agree = agreement(lists, base_lists, k)
    # Each kind against its own baseline, weighted by its share of the replay (a baseline from
    # before the search share is one kind holding every request).
    base_kinds: dict[str, Any] = base.get("by_kind") or {"recommend": base}
    total = sum(int(b["n"]) for b in base_kinds.values()) or 1
    ratio, parts, bases = 0.0, {}, set()
    for kind, b in base_kinds.items():
        kind_ratio, basis = _kind_ratio(now["by_kind"].get(kind), b, lists, base_lists, k)
        parts[kind] = {"ratio": round(kind_ratio, 4), "basis": basis, "share": int(b["n"]) / total}
        bases.add(basis)
        ratio += kind_ratio * int(b["n"]) / total
    now.update(
        {
            "ratio": round(ratio, 4),
            "ratio_basis": "+".join(sorted(bases)),
            "ratio_by_kind": parts,
            "agreement": round(agree, 4),
            "hr_ratio": round(now[f"hr@{k}"] / max(base[f"hr@{k}"], 1e-9), 4),
            "phase": ctx.current_phase(),
        }
    )
    data.setdefault("measurements", []).append(now)
    ctx.write_quality(data)
    return round(ratio, 4)


def _kind_ratio(
    now: Mapping[str, Any] | None,
    base: Mapping[str, Any],
    lists: Mapping[str, list[int]],
    base_lists: Mapping[str, list[int]],
    k: int,
) -> tuple[float, str]:
    """One kind's quality now relative to its baseline: NDCG@k, or top-k agreement when the
    baseline hit too few held-out items for a stable NDCG ratio."""
    if int(base.get("hits", 0)) >= MIN_BASELINE_HITS and float(base[f"ndcg@{k}"]) > 0:
        return float((now or {}).get(f"ndcg@{k}", 0.0)) / float(base[f"ndcg@{k}"]), f"ndcg@{k}"
    users = base.get("users")  # None in a baseline from before the search share: every user
    mine = {u: v for u, v in base_lists.items() if users is None or u in users}
    return agreement(lists, mine, k), "agreement"


def needs_final_measurement(ctx: RunContext) -> bool:
    """True when a baseline was taken but quality was never measured after it."""
    data = ctx.quality() or {}
    return bool(data.get("baseline")) and not data.get("measurements")
