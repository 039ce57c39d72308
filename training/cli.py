"""Command line: ``python -m training build|card|facts|evaluate|materialize|holdout``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.errors import TrainingError

__all__ = ["main"]

DEFAULT_BUNDLE = Path("bundles/reference")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="data → train → evaluate → bundle")
    b.add_argument("--out", type=Path, default=DEFAULT_BUNDLE)
    b.add_argument(
        "--dataset", default="movielens", help="movielens, instacart, csv:PATH, parquet:PATH"
    )
    b.add_argument(
        "--set", action="append", default=[], metavar="KEY=JSON", help="override a config value"
    )
    c = sub.add_parser(
        "card", help="re-measure a bundle (subsets, baselines, search); rewrite metadata and card"
    )
    c.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    f = sub.add_parser(
        "facts", help="print a dataset's difficulty figures (lengths, repeats, text)"
    )
    f.add_argument("--dataset", default="movielens")
    f.add_argument("--set", action="append", default=[], metavar="KEY=JSON")
    e = sub.add_parser("evaluate", help="print the metrics recorded in a bundle after verifying it")
    e.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    m = sub.add_parser("materialize", help="write user features into Redis, or verify them")
    m.add_argument("--redis", required=True, help="redis://host:port/db")
    m.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    m.add_argument("--ttl", type=int, default=None, help="expire user keys after N seconds")
    m.add_argument("--verify-only", action="store_true")
    m.add_argument("--timeout", type=float, default=5.0)
    h = sub.add_parser("holdout", help="write the held-out (user, item, query) rows as JSON")
    h.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    h.add_argument("--out", type=Path, required=True)
    h.add_argument("--query-fraction", type=float, default=0.3)
    h.add_argument("--seed", type=int, default=11)
    return p


def _overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise TrainingError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _log(msg: str) -> None:
    print(msg, flush=True)


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "build":
        from training.pipeline import build
        from training.train import DEFAULT_CONFIG

        over = _overrides(args.set)
        unknown = sorted(set(over) - set(DEFAULT_CONFIG))
        if unknown:
            raise TrainingError(f"unknown config key(s) {unknown}; known: {sorted(DEFAULT_CONFIG)}")
        meta = build(args.dataset, args.out, over, _log)
        print(json.dumps({"model_version": meta["model_version"], "metrics": meta["metrics"]}))
        return 0
    if args.cmd == "card":
        from training.pipeline import remeasure

        meta = remeasure(args.bundle, _log)
        print(json.dumps({"model_version": meta["model_version"], "subsets": meta["subsets"]}))
        return 0
    if args.cmd == "facts":
        from training.data import load_dataset
        from training.datafacts import dataset_facts
        from training.split import leave_last_out
        from training.train import DEFAULT_CONFIG

        cfg = {**DEFAULT_CONFIG, **_overrides(args.set)}
        ds = load_dataset(
            args.dataset, min_user=int(cfg["min_user"]), min_item=int(cfg["min_item"])
        )
        print(json.dumps(dataset_facts(ds, leave_last_out(ds, cfg["tie_seed"])), indent=1))
        return 0
    if args.cmd == "evaluate":
        from training.bundle import verify
        from training.card import metrics_table, subset_table

        verify(args.bundle)
        meta = json.loads((args.bundle / "metadata.json").read_text())
        print(metrics_table(meta["metrics"]))
        if meta.get("subsets"):
            print(subset_table(meta["subsets"]))
        print(json.dumps(meta["metrics"]))
        return 0
    if args.cmd == "materialize":
        from training.materialize import materialize, verify_store

        if not args.verify_only:
            info = materialize(args.redis, args.bundle, ttl_s=args.ttl, timeout=args.timeout)
            print(
                f"materialized {info['n_users']} users for {info['model_version']} into {args.redis}"
            )
        rep = verify_store(args.redis, args.bundle, timeout=args.timeout)
        print(rep.line())
        return 0 if rep.ok else 1
    from training.materialize import holdout_rows

    rows = holdout_rows(args.bundle, query_fraction=args.query_fraction, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows) + "\n")
    print(f"wrote {len(rows)} holdout rows to {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; errors print one line and exit 2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"error: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
