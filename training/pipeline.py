"""The whole pipeline: data → split → train → evaluate (with baselines) → bundle."""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.bundle import METADATA, WEIGHTS, write_manifest
from training.card import render_card
from training.data import Dataset, load_dataset
from training.errors import TrainingError
from training.evaluation import measure
from training.model import BASE_MODEL, RankHead, SeqRec, TextEncoder
from training.scoring import Scorer
from training.split import Split, leave_last_out
from training.train import (
    DEFAULT_CONFIG,
    Log,
    head_epoch_curve,
    seed_all,
    train_head,
    train_seq,
    train_text,
)

__all__ = [
    "build",
    "bundle_tensors",
    "item_tables",
    "remeasure",
    "write_bundle",
]


def pick_device(want: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; ``cpu``/``cuda`` as asked."""
    if want == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if want not in ("cpu", "cuda"):
        raise TrainingError(f"unknown device {want!r}: use auto, cpu or cuda")
    if want == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device cuda asked for, but torch sees no CUDA device")
    return torch.device(want)


def item_tables(ds: Dataset, split: Split) -> dict[str, torch.Tensor]:
    pop = split.popularity()
    genres = torch.zeros(ds.n_items, max(1, len(ds.categories)))
    for i, g in enumerate(ds.item_genres):
        genres[i, g] = 1.0
    return {
        "item.ids": torch.from_numpy(ds.item_ids.copy()),
        "item.category": torch.from_numpy(ds.item_category.copy()),
        "item.logpop": torch.from_numpy(np.log1p(pop) / np.log1p(pop.max())).float(),
        "item.genres": genres,
    }


def build(dataset: str, out: Path, overrides: dict[str, Any], log: Log) -> dict[str, Any]:
    """Run the whole pipeline and write the bundle to ``out``; return the metadata."""
    t_start = time.perf_counter()
    cfg = {**DEFAULT_CONFIG, **overrides}
    check_head_epochs_setting(cfg["head_epochs"])  # before minutes of training, not after
    seed_all(int(cfg["seed"]))
    dev = pick_device(str(cfg["device"]))
    cfg["trained_on"] = str(dev)
    log(f"device: {dev}")
    ds = load_dataset(dataset, min_user=int(cfg["min_user"]), min_item=int(cfg["min_item"]))
    split = leave_last_out(ds, cfg["tie_seed"])
    log(
        f"data {ds.name}: {len(split.user_ids)} users ({int(split.unambiguous.sum())} with an "
        f"unambiguous last event), {ds.n_items} items, cleaning {ds.report.as_dict()}"
    )
    timings: dict[str, float] = {}
    t = time.perf_counter()
    enc = TextEncoder(int(cfg["lora_rank"]), float(cfg["lora_alpha"]), tuple(cfg["lora_layers"]))
    enc.to(dev)
    text_feat = enc.encode_all(ds.item_text)
    timings["text_encode_s"] = time.perf_counter() - t
    cfg["n_items"] = ds.n_items
    model = SeqRec(cfg, text_feat).to(dev)
    head = RankHead(int(cfg["dim"]), int(cfg["head_hidden"])).to(dev)
    tables = item_tables(ds, split)
    scorer = Scorer(
        model=model,
        head=head,
        item_vecs=model.item_table().detach(),
        logpop=tables["item.logpop"].to(dev),
        item_cat=tables["item.category"].long().to(dev),
        genre_mh=tables["item.genres"].to(dev),
        max_history=int(cfg["max_history"]),
        rerank=int(cfg["rerank"]),
        query_weight=float(cfg["query_weight"]),
    )
    t = time.perf_counter()
    log("sequence model:")
    train_seq(split, text_feat, cfg, scorer, log)
    timings["seq_s"] = time.perf_counter() - t
    t = time.perf_counter()
    if int(cfg["text_steps"]) > 0:
        cfg["query_weight"] = scorer.query_weight = train_text(ds, split, enc, scorer, cfg, log)
    timings["text_lora_s"] = time.perf_counter() - t
    t = time.perf_counter()
    curve = choose_head_epochs(split, scorer, cfg, log)
    train_head(split, scorer, cfg, log)
    timings["head_s"] = time.perf_counter() - t
    tensors = bundle_tensors(scorer, enc.lora_state(), tables)
    # the baselines (SASRec included) train after ours: ours' weights do not depend on them
    log("evaluation (test):")
    figures = measure(ds, split, scorer, query_encoder(scorer, enc), int(cfg["seed"]), log)
    timings.update(figures.pop("timings_s"))
    figures["head_epochs_check"] = curve
    timings["total_s"] = time.perf_counter() - t_start
    return write_bundle(out, ds, split, cfg, tensors, figures, timings)


def best_head_epochs(curve: dict[int, float]) -> int:
    """The epoch count with the best cross-fit NDCG@10; on a tie, the fewest epochs."""
    return max(curve, key=lambda e: (curve[e], -e))


def check_head_epochs(
    split: Split,
    scorer: Scorer,
    cfg: dict[str, Any],
    log: Log,
    curve: dict[int, float] | None = None,
) -> dict[str, float]:
    """Validation cross-fit NDCG@10 per head epoch count (see ``head_epoch_curve``), logged."""
    curve = head_epoch_curve(split, scorer, cfg) if curve is None else curve
    best = best_head_epochs(curve)
    log(
        f"  head epochs (validation cross-fit): best {best} ({curve[best]:.4f}), "
        f"used {cfg['head_epochs']} ({curve.get(int(cfg['head_epochs']), float('nan')):.4f}), "
        f"none {curve[0]:.4f}"
    )
    return {str(e): v for e, v in curve.items()}


def choose_head_epochs(
    split: Split, scorer: Scorer, cfg: dict[str, Any], log: Log
) -> dict[str, float]:
    """Resolve ``cfg["head_epochs"]`` before the head trains; return the cross-fit curve.

    ``"validation"`` (the default) takes the curve's best count and records
    ``head_epochs_chosen_by``; an int is kept as a fixed setting. The curve only uses fresh
    heads and validation targets, so choosing from it looks at no test item.
    """
    check_head_epochs_setting(cfg["head_epochs"])
    curve = head_epoch_curve(split, scorer, cfg)
    if cfg["head_epochs"] == "validation":
        cfg["head_epochs"] = best_head_epochs(curve)
        cfg["head_epochs_chosen_by"] = "validation cross-fit"
    else:
        cfg["head_epochs_chosen_by"] = "fixed"
    return check_head_epochs(split, scorer, cfg, log, curve)


def check_head_epochs_setting(rule: object) -> None:
    """One clear error for a ``head_epochs`` that is neither ``"validation"`` nor a count."""
    if rule == "validation" or (isinstance(rule, int) and not isinstance(rule, bool) and rule >= 0):
        return
    raise TrainingError(f'head_epochs must be "validation" or a whole number >= 0, not {rule!r}')


def query_encoder(scorer: Scorer, enc: TextEncoder) -> Callable[[list[str]], torch.Tensor]:
    """Search text → query vectors in item space (the served ``query`` path)."""

    def encode(texts: list[str]) -> torch.Tensor:
        out: torch.Tensor = scorer.model.query_proj(enc.encode_all(texts))
        return out

    return encode


def bundle_tensors(
    scorer: Scorer, lora: dict[str, torch.Tensor], tables: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Every tensor the bundle's ``finetuned.safetensors`` holds, by name."""
    model, head = scorer.model, scorer.head
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"head.{k}": v for k, v in head.state_dict().items()})
    tensors.update({f"lora.{k}": v for k, v in lora.items()})
    tensors["item.vecs"] = scorer.item_vecs
    tensors.update(tables)
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def split_rule(tie_seed: int | None) -> str:
    """The split's wording for the metadata and the card."""
    ties = "item id" if tie_seed is None else f"a random draw seeded {tie_seed}"
    return (
        f"leave-last-out per user; events ordered by (ts, {ties}); last = test, "
        "second-to-last = validation"
    )


def write_bundle(
    out: Path,
    ds: Dataset,
    split: Split,
    cfg: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    figures: dict[str, Any],
    timings: dict[str, float],
) -> dict[str, Any]:
    """Write weights, metadata (``figures``: ``metrics`` plus optional ``subsets``/``search``),
    the model card and the manifest to ``out``."""
    # Everything is written beside ``out`` and swapped in only when complete: a failure
    # leaves the previous bundle (the committed reference one, by default) as it was.
    out.parent.mkdir(parents=True, exist_ok=True)
    part = Path(tempfile.mkdtemp(prefix=f".{out.name}.part-", dir=out.parent))
    try:
        meta = _write_bundle_files(part, ds, split, cfg, tensors, figures, timings)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    part.rename(out)
    return meta


def _write_bundle_files(
    out: Path,
    ds: Dataset,
    split: Split,
    cfg: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    figures: dict[str, Any],
    timings: dict[str, float],
) -> dict[str, Any]:
    from safetensors.torch import save_file

    save_file(tensors, str(out / WEIGHTS))
    wsha = hashlib.sha256((out / WEIGHTS).read_bytes()).hexdigest()
    meta: dict[str, Any] = {
        "model_version": f"{ds.name}-{wsha[:12]}",
        "dataset": ds.name,
        "base_model": BASE_MODEL,
        "n_items": ds.n_items,
        "n_users": len(split.user_ids),
        "categories": ds.categories,
        **figures,
        "cleaning": ds.report.as_dict(),
        "split": split_rule(cfg.get("tie_seed")),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "lora_params": sum(v.numel() for k, v in tensors.items() if k.startswith("lora.")),
        "created_by": f"python -m training build (torch {torch.__version__}, {platform.machine()})",
        "config": cfg,
    }
    card = render_card(meta)
    (out / METADATA).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    (out / "model_card.md").write_text(card)
    write_manifest(out)
    return meta


def remeasure(path: Path, log: Log) -> dict[str, Any]:
    """Re-run the test evaluation of a written bundle and rewrite its metadata and card.

    The weights file is not touched (same model version); ``metrics``, ``subsets``,
    ``search`` and ``head_epochs_check`` are replaced, this run's evaluation timings recorded
    as ``remeasured_s``, the manifest rewritten.
    """
    from training.bundle import load_bundle
    from training.materialize import load_for_bundle

    bundle = load_bundle(path)
    meta, ds, split = load_for_bundle(path)
    seed_all(int(meta["config"]["seed"]))

    def encode(texts: list[str]) -> torch.Tensor:
        qv = bundle.encode_queries(list(texts))
        if qv is None:
            raise TrainingError("search evaluation needs non-empty queries")
        return qv

    log(f"re-measuring {meta['model_version']} ({len(split.user_ids)} users):")
    figures = measure(ds, split, bundle.scorer, encode, int(meta["config"]["seed"]), log)
    # the build's own timings stay; this run's evaluation timings are kept beside them
    meta["remeasured_s"] = {k: round(v, 1) for k, v in figures.pop("timings_s").items()}
    figures["head_epochs_check"] = check_head_epochs(split, bundle.scorer, meta["config"], log)
    meta.update(figures)
    (path / METADATA).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    (path / "model_card.md").write_text(render_card(meta))
    write_manifest(path)
    return meta
