"""Training benchmark: quality table (ours vs baselines), training time, recommend() latency.

Default: reads the committed bundle's recorded metrics/timings and measures recommend()
latency on this machine. ``--train`` reruns the whole pipeline (``python -m training build``)
into a temp folder first and reports its fresh figures. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _latency(bundle: Path) -> dict[str, float]:
    import numpy as np

    from training.bundle import load_bundle

    b = load_bundle(bundle)
    b.warmup()
    rng = np.random.default_rng(0)
    hists = [[int(i) for i in rng.choice(b.item_ids, size=50, replace=False)] for _ in range(32)]
    out: dict[str, float] = {}
    for name, batch, query in [
        ("b1_ms", 1, None),
        ("b32_ms", 32, None),
        ("b1_query_ms", 1, "space adventure"),
        ("b32_query_ms", 32, "space adventure"),
    ]:
        times = []
        for _ in range(30):
            t = time.perf_counter()
            b.recommend(hists[:batch], [query] * batch, k=10)
            times.append((time.perf_counter() - t) * 1e3)
        out[f"p50_{name}"] = round(statistics.median(times), 2)
        out[f"p90_{name}"] = round(sorted(times)[int(0.9 * len(times)) - 1], 2)
    return out


def main() -> int:
    """Print the table, timings and latency; last line is JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bundle", type=Path, default=ROOT / "bundles" / "reference")
    ap.add_argument("--train", action="store_true", help="rerun the full build first")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the latency part")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    bundle = args.bundle
    wall = None
    tmp = None
    if args.train:
        tmp = tempfile.TemporaryDirectory(prefix="cr-bench-train-")
        bundle = Path(tmp.name) / "bundle"
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "training", "build", "--out", str(bundle)],
            cwd=ROOT,
            check=True,
            timeout=3600,
        )
        wall = time.perf_counter() - t
    from training.card import metrics_table

    meta = json.loads((bundle / "metadata.json").read_text())
    m = meta["metrics"]
    print(f"bundle {meta['model_version']} ({'fresh build' if args.train else 'recorded'})")
    print(metrics_table(m))
    ours, ease, pop = m["ours"], m["ease"], m["popularity"]
    print(
        f"NDCG@10 ours/EASE {ours['ndcg@10'] / ease['ndcg@10']:.2f}  ours/popularity {ours['ndcg@10'] / pop['ndcg@10']:.2f}"
    )
    print(
        f"training timings (s): {meta['timings_s']}"
        + (f"; wall incl. start-up {wall:.1f}" if wall else "")
    )
    import torch

    torch.set_num_threads(args.threads)
    lat = _latency(bundle)
    print(
        f"recommend() latency ms (torch threads: {args.threads}): "
        + ", ".join(f"{k}={v}" for k, v in lat.items())
    )
    result = {
        "bench": "training",
        "model_version": meta["model_version"],
        "ndcg@10": ours["ndcg@10"],
        "hr@10": ours["hr@10"],
        "mrr": ours["mrr"],
        "ease_ndcg@10": ease["ndcg@10"],
        "itemknn_ndcg@10": m["itemknn"]["ndcg@10"],
        "popularity_ndcg@10": pop["ndcg@10"],
        "train_total_s": meta["timings_s"]["total_s"],
        "build_wall_s": None if wall is None else round(wall, 1),
        "torch_threads": args.threads,
        **lat,
    }
    if tmp is not None:
        tmp.cleanup()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
