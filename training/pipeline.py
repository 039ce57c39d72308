"""The whole pipeline: data → split → train → evaluate (with baselines) → bundle."""

from __future__ import annotations

import hashlib
import json
import platform
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training import metrics as M
from training.bundle import METADATA, WEIGHTS, write_manifest
from training.card import render_card
from training.data import Dataset, load_dataset
from training.errors import TrainingError
from training.model import BASE_MODEL, RankHead, SeqRec, TextEncoder
from training.scoring import Scorer
from training.split import Split, leave_last_out
from training.train import (
    DEFAULT_CONFIG,
    Log,
    seed_all,
    synth_queries,
    train_head,
    train_seq,
    train_text,
)

__all__ = [
    "baselines",
    "build",
    "bundle_tensors",
    "evaluate_scorer",
    "item_tables",
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


def baselines(split: Split, log: Log) -> dict[str, dict[str, float]]:
    """Popularity, ItemKNN and EASE fit on the training histories, tuned on validation."""
    out: dict[str, dict[str, float]] = {}
    inner = split.train
    x_in = M.user_item_matrix(inner, split.n_items)
    x = M.user_item_matrix(split.hist, split.n_items)
    pop = split.popularity()
    out["popularity"] = M.rank_metrics(
        M.ranks_from_scores(np.tile(pop, (len(x), 1)), split.test, split.hist)
    )
    k, _ = M.tune(lambda g: M.itemknn_scores(x_in, int(g)), [20, 50, 100, 200], split.valid, inner)
    out["itemknn"] = M.rank_metrics(
        M.ranks_from_scores(M.itemknn_scores(x, int(k)), split.test, split.hist)
    )
    out["itemknn"]["k"] = k
    lam, _ = M.tune(
        lambda g: M.ease_scores(x_in, g), [50.0, 100.0, 250.0, 500.0, 1000.0], split.valid, inner
    )
    out["ease"] = M.rank_metrics(M.ranks_from_scores(M.ease_scores(x, lam), split.test, split.hist))
    out["ease"]["lambda"] = lam
    for name, m in out.items():
        log(f"  {name}: " + " ".join(f"{k}={v:.4f}" for k, v in m.items()))
    return out


def evaluate_scorer(
    ds: Dataset, split: Split, scorer: Scorer, enc: TextEncoder | None, seed: int
) -> dict[str, float]:
    """Full-corpus HR/NDCG/MRR (retrieval only and with the head) plus head probability metrics."""
    hists = [list(map(int, h)) for h in split.hist]
    c = scorer.rerank
    ranks_ret, ranks_full, probs, labels = [], [], [], []
    with torch.inference_mode():
        for i in range(0, len(hists), 128):
            hb = hists[i : i + 128]
            tb = torch.from_numpy(split.test[i : i + 128]).to(scorer.item_vecs.device)
            u, scores = scorer.retrieval(hb, None, exclude_seen=True)
            ranks_ret.append(
                M.ranks_from_scores(
                    scores.cpu().numpy(), tb.cpu().numpy(), [np.array(h) for h in hb]
                )
            )
            cs, cand = scores.topk(c, dim=1)
            p = torch.sigmoid(scorer.head_logits(hb, u, cand, cs))
            order = p.argsort(dim=1, descending=True, stable=True)
            reranked = torch.gather(cand, 1, order)
            hit = reranked == tb.unsqueeze(1)
            in_top = hit.any(1)
            pos = hit.float().argmax(1)
            rr = torch.from_numpy(ranks_ret[-1]).to(pos.device)
            ranks_full.append(torch.where(in_top, pos, rr).cpu().numpy())
            probs.append(p.flatten().cpu().numpy())
            labels.append((cand == tb.unsqueeze(1)).flatten().cpu().numpy())
    out = {f"retrieval_{k}": v for k, v in M.rank_metrics(np.concatenate(ranks_ret)).items()}
    out.update(M.rank_metrics(np.concatenate(ranks_full)))
    out.update(
        {
            f"head_{k}": v
            for k, v in M.prob_metrics(np.concatenate(probs), np.concatenate(labels)).items()
        }
    )
    out["head_candidates_with_target"] = float(np.mean([r < c for r in np.concatenate(ranks_ret)]))
    if enc is not None:  # search quality: query = a synthetic query for the held-out item
        rng = random.Random(seed)
        queries = synth_queries(ds, split.test, rng)
        ranks_q = []
        with torch.inference_mode():
            for i in range(0, len(hists), 128):
                qv = scorer.model.query_proj(enc.encode_all(queries[i : i + 128]))
                _, scores = scorer.retrieval(hists[i : i + 128], qv, exclude_seen=True)
                ranks_q.append(
                    M.ranks_from_scores(
                        scores.cpu().numpy(),
                        split.test[i : i + 128],
                        [np.array(h) for h in hists[i : i + 128]],
                    )
                )
        out.update({f"query_{k}": v for k, v in M.rank_metrics(np.concatenate(ranks_q)).items()})
    return out


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
    seed_all(int(cfg["seed"]))
    dev = pick_device(str(cfg["device"]))
    cfg["trained_on"] = str(dev)
    log(f"device: {dev}")
    ds = load_dataset(dataset, min_user=int(cfg["min_user"]), min_item=int(cfg["min_item"]))
    split = leave_last_out(ds)
    log(
        f"data {ds.name}: {len(split.user_ids)} users, {ds.n_items} items, cleaning {ds.report.as_dict()}"
    )
    timings: dict[str, float] = {}
    t = time.perf_counter()
    log("baselines (tuned on validation, fit on all-but-last):")
    base = baselines(split, log)
    timings["baselines_s"] = time.perf_counter() - t
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
    train_head(split, scorer, cfg, log)
    timings["head_s"] = time.perf_counter() - t
    ours = evaluate_scorer(ds, split, scorer, enc, int(cfg["seed"]))
    log("ours: " + " ".join(f"{k}={v:.4f}" for k, v in ours.items()))
    timings["total_s"] = time.perf_counter() - t_start
    tensors = bundle_tensors(scorer, enc.lora_state(), tables)
    return write_bundle(out, ds, split, cfg, tensors, {"ours": ours, **base}, timings)


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


def write_bundle(
    out: Path,
    ds: Dataset,
    split: Split,
    cfg: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    metrics: dict[str, dict[str, float]],
    timings: dict[str, float],
) -> dict[str, Any]:
    from safetensors.torch import save_file

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    save_file(tensors, str(out / WEIGHTS))
    wsha = hashlib.sha256((out / WEIGHTS).read_bytes()).hexdigest()
    meta: dict[str, Any] = {
        "model_version": f"{ds.name}-{wsha[:12]}",
        "dataset": ds.name,
        "base_model": BASE_MODEL,
        "n_items": ds.n_items,
        "n_users": len(split.user_ids),
        "categories": ds.categories,
        "metrics": metrics,
        "cleaning": ds.report.as_dict(),
        "split": "leave-last-out per user; events ordered by (ts, item id); last = test, "
        "second-to-last = validation",
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "lora_params": sum(v.numel() for k, v in tensors.items() if k.startswith("lora.")),
        "created_by": f"python -m training build (torch {torch.__version__}, {platform.machine()})",
        "config": cfg,
    }
    (out / METADATA).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    (out / "model_card.md").write_text(render_card(meta))
    write_manifest(out)
    return meta
