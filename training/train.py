"""Training stages: sequence model, text-encoder LoRA (query → item space), ranking head."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from training.data import Dataset
from training.metrics import rank_metrics, ranks_from_scores
from training.model import RankHead, SeqRec, TextEncoder
from training.scoring import Scorer
from training.split import Split

__all__ = [
    "DEFAULT_CONFIG",
    "head_epoch_curve",
    "seed_all",
    "synth_queries",
    "train_head",
    "train_seq",
    "train_text",
]

DEFAULT_CONFIG: dict[str, Any] = {
    "seed": 7,
    "dim": 64,
    "heads": 2,
    "layers": 2,
    "dropout": 0.2,
    "max_history": 50,
    "loss": "ce",
    "n_neg": 128,
    "epochs": 30,
    "batch": 128,
    "lr": 2e-3,
    "weight_decay": 0.01,
    "patience": 5,
    "lora_rank": 8,
    "lora_alpha": 16.0,
    "lora_layers": [4, 5],
    "text_steps": 100,
    "text_batch": 32,
    "text_lr": 3e-3,
    "head_hidden": 64,
    "head_epochs": "validation",  # an int: a fixed count; "validation": the cross-fit's best
    "head_lr": 3e-3,
    "rerank": 100,
    "query_weight": 1.0,
    "tie_seed": None,  # None: same-ts events ordered by item id; an int: seeded random order
    "min_user": 5,
    "min_item": 1,
    "device": "auto",
}

Log = Callable[[str], None]


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch; deterministic torch kernels where available."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def windows(seqs: list[np.ndarray], length: int) -> torch.Tensor:
    """Non-overlapping windows of length+1 from each sequence's end, left-padded (idx+1)."""
    rows: list[np.ndarray] = []
    for s in seqs:
        for end in range(len(s), 1, -length):
            start = max(0, end - length - 1)
            w = np.zeros(length + 1, dtype=np.int64)
            w[length + 1 - (end - start) :] = s[start:end] + 1
            rows.append(w)
    return torch.from_numpy(np.stack(rows))


def _val_ndcg(scorer: Scorer, seqs: list[np.ndarray], targets: np.ndarray) -> float:
    scorer.model.eval()
    with torch.inference_mode():
        scorer.item_vecs = scorer.model.item_table()
        u = torch.cat(
            [
                scorer.user_vecs(scorer.pad([list(map(int, s)) for s in seqs[i : i + 256]]))
                for i in range(0, len(seqs), 256)
            ]
        )
        scores = (u @ scorer.item_vecs.t()).cpu().numpy()
    return rank_metrics(ranks_from_scores(scores, targets, seqs))["ndcg@10"]


def train_seq(
    split: Split, text_feat: torch.Tensor, cfg: dict[str, Any], scorer: Scorer, log: Log
) -> SeqRec:
    """Train the item/user towers on next-item prediction; early-stop on validation NDCG@10."""
    model = scorer.model
    train = split.train
    win = windows(train, int(cfg["max_history"]))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    gen = torch.Generator().manual_seed(int(cfg["seed"]))
    best, best_state, bad = -1.0, None, 0
    n = split.n_items
    for epoch in range(int(cfg["epochs"])):
        model.train()
        t0, total = time.perf_counter(), 0.0
        perm = torch.randperm(len(win), generator=gen)
        for i in range(0, len(win), int(cfg["batch"])):
            w = win[perm[i : i + int(cfg["batch"])]].to(scorer.item_vecs.device)
            inp, tgt = w[:, :-1], w[:, 1:]
            table = model.item_table()
            h = model.encode(inp, table)
            valid = tgt > 0
            hv, tv = h[valid], tgt[valid] - 1
            if cfg["loss"] == "ce":
                loss = nn.functional.cross_entropy(hv @ table.t(), tv)
            else:
                neg = torch.randint(0, n, (int(cfg["n_neg"]),), generator=gen).to(w.device)
                pos_l = (hv * table[tv]).sum(-1)
                neg_l = hv @ table[neg].t()
                neg_l = neg_l.masked_fill(neg.unsqueeze(0) == tv.unsqueeze(1), -1e4)
                loss = nn.functional.binary_cross_entropy_with_logits(
                    pos_l, torch.ones_like(pos_l)
                ) + nn.functional.binary_cross_entropy_with_logits(
                    neg_l, torch.zeros_like(neg_l), reduction="sum"
                ) / max(1, len(hv))
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach())
        ndcg = _val_ndcg(scorer, train, split.valid)
        log(
            f"  seq epoch {epoch + 1}: loss {total:.1f} val ndcg@10 {ndcg:.4f} ({time.perf_counter() - t0:.1f}s)"
        )
        if ndcg > best:
            best, bad = ndcg, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= int(cfg["patience"]):
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        scorer.item_vecs = model.item_table().detach()
    return model


def synth_queries(ds: Dataset, items: np.ndarray, rng: random.Random) -> list[str]:
    """A search-like query per item: its genre, title words, or genre + title word."""
    out = []
    for i in items:
        title = ds.item_text[int(i)].split(". Genres:")[0].split(" (")[0]
        words = [w for w in title.replace(",", " ").split() if len(w) > 2] or [title]
        genres = [ds.categories[g] for g in ds.item_genres[int(i)]]
        kind = rng.random()
        if genres and kind < 0.4:
            out.append(rng.choice(genres))
        elif kind < 0.8 or not genres:
            out.append(" ".join(words[: rng.randint(1, min(3, len(words)))]))
        else:
            out.append(f"{rng.choice(genres)} {rng.choice(words)}")
    return out


def _query_ndcg(
    split: Split, scorer: Scorer, qv: torch.Tensor, weights: tuple[float, ...]
) -> dict[float, float]:
    """Validation NDCG@10 per blend weight, with query vectors ``qv`` for the validation items."""
    padded = scorer.pad([list(map(int, s)) for s in split.train])
    out = {}
    with torch.inference_mode():
        for w in weights:
            _, scores = scorer.retrieval(padded, w * qv, exclude_seen=True)
            ranks = ranks_from_scores(scores.cpu().numpy(), split.valid, split.train)
            out[w] = rank_metrics(ranks)["ndcg@10"]
    return out


def train_text(
    ds: Dataset, split: Split, enc: TextEncoder, scorer: Scorer, cfg: dict[str, Any], log: Log
) -> float:
    """Fine-tune LoRA + query projection so search text lands near its item; return blend weight."""
    rng = random.Random(int(cfg["seed"]))
    pop = split.popularity() + 1.0
    probs = pop / pop.sum()
    nrng = np.random.default_rng(int(cfg["seed"]))
    model = scorer.model
    with torch.no_grad():
        model.query_proj.load_state_dict(model.text_proj.state_dict())
    params = [p for n, p in enc.named_parameters() if "lora_" in n]
    params += list(model.query_proj.parameters())
    opt = torch.optim.AdamW(params, lr=cfg["text_lr"], weight_decay=0.0)
    table = scorer.item_vecs.detach()
    enc.train()
    t0, total = time.perf_counter(), 0.0
    steps = int(cfg["text_steps"])
    for _step in range(steps):
        items = nrng.choice(split.n_items, size=int(cfg["text_batch"]), p=probs)
        q = synth_queries(ds, items, rng)
        logits = model.query_proj(enc(q)) @ table.t()
        loss = nn.functional.cross_entropy(logits, torch.from_numpy(items).to(logits.device))
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        total += float(loss.detach())
    enc.eval()
    log(
        f"  text LoRA + query projection: {steps} steps, mean loss {total / max(1, steps):.3f} ({time.perf_counter() - t0:.1f}s)"
    )
    queries = synth_queries(ds, split.valid, random.Random(int(cfg["seed"]) + 2))
    with torch.inference_mode():
        qv = model.query_proj(enc.encode_all(queries))
    grid = _query_ndcg(split, scorer, qv, (0.0, 0.5, 1.0, 2.0, 4.0))
    best = max(grid, key=lambda w: grid[w])
    log(
        "  query blend weight (validation ndcg@10): "
        + ", ".join(f"{w}: {v:.4f}" for w, v in grid.items())
    )
    return best


HeadInputs = tuple[
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    tuple[torch.Tensor, torch.Tensor],
    torch.Tensor,
]


def _head_inputs(split: Split, scorer: Scorer, cfg: dict[str, Any]) -> HeadInputs:
    """(padded train histories, user vectors, candidate scores, candidates, profiles, labels)."""
    padded = scorer.pad([list(map(int, s)) for s in split.train])
    with torch.inference_mode():
        u, scores = scorer.retrieval(padded, None, exclude_seen=True)
        cs, cand = scores.topk(int(cfg["rerank"]), dim=1)
        profiles = scorer.profiles(padded)
    u, cs, cand = u.clone(), cs.clone(), cand.clone()
    profiles = (profiles[0].clone(), profiles[1].clone())
    y = (cand == torch.from_numpy(split.valid).to(cand.device).unsqueeze(1)).float()
    return padded, u, cs, cand, profiles, y


def _fit_head(
    scorer: Scorer,
    inputs: HeadInputs,
    users: torch.Tensor,
    epochs: int,
    cfg: dict[str, Any],
    after_epoch: Callable[[int], None] | None = None,
) -> float:
    """Minibatch BCE epochs of ``scorer.head`` over ``users``; return the last epoch's mean loss."""
    padded, u, cs, cand, profiles, y = inputs
    head = scorer.head
    opt = torch.optim.AdamW(head.parameters(), lr=float(cfg["head_lr"]), weight_decay=0.01)
    gen = torch.Generator().manual_seed(int(cfg["seed"]) + 1)
    head.train()
    bs = 64
    total = 0.0
    for epoch in range(epochs):
        perm = users[torch.randperm(len(users), generator=gen).to(users.device)]
        total = 0.0
        for i in range(0, len(perm), bs):
            b = perm[i : i + bs]
            prof = (profiles[0][b], profiles[1][b])
            logits = scorer.head_logits(padded[b], u[b], cand[b], cs[b], prof)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, y[b])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach()) * len(b)
        if after_epoch is not None:
            head.eval()
            after_epoch(epoch + 1)
            head.train()
    head.eval()
    return total / max(1, len(users))


def train_head(split: Split, scorer: Scorer, cfg: dict[str, Any], log: Log) -> RankHead:
    """Train the ranking head with BCE on the validation target among retrieved candidates.

    ``cfg["head_epochs"]`` must be an int here (``pipeline.choose_head_epochs`` resolves
    ``"validation"`` first)."""
    inputs = _head_inputs(split, scorer, cfg)
    users = torch.arange(len(inputs[3]), device=inputs[3].device)
    loss = _fit_head(scorer, inputs, users, int(cfg["head_epochs"]), cfg)
    log(
        f"  head: {cfg['head_epochs']} epochs, last-epoch BCE {loss:.4f}, positives {int(inputs[5].sum())}"
    )
    return scorer.head


def head_epoch_curve(
    split: Split, scorer: Scorer, cfg: dict[str, Any], max_epochs: int = 20
) -> dict[int, float]:
    """Validation-only check of the head's epoch count (2-fold cross-fit over users).

    A fresh head trains on one half of the users' validation targets and is scored on the
    other half after each epoch: NDCG@10 of the validation item after reranking the top
    ``rerank`` candidates (0 epochs = the retrieval order the head starts from). Returns the
    mean over both folds per epoch count. Test items are never looked at; the global torch
    RNG is left as it was.
    """
    inputs = _head_inputs(split, scorer, cfg)
    cand, y = inputs[3], inputs[5]
    dev = cand.device
    order = torch.from_numpy(np.random.default_rng(int(cfg["seed"])).permutation(len(cand)))
    folds = [order[: len(order) // 2].to(dev), order[len(order) // 2 :].to(dev)]
    sums: dict[int, float] = {}

    def ndcg(sc: Scorer, users: torch.Tensor) -> float:
        padded, u, cs, _c, prof, _y = inputs
        with torch.inference_mode():
            p = sc.head_logits(
                padded[users], u[users], cand[users], cs[users], (prof[0][users], prof[1][users])
            )
            hit = torch.gather(y[users], 1, p.argsort(dim=1, descending=True, stable=True))
        pos = hit.argmax(1).float()
        gain = torch.where(hit.any(1) & (pos < 10), 1.0 / torch.log2(pos + 2.0), 0.0)
        return float(gain.mean())

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg["seed"]) + 3)
        for k in range(2):
            fit_on, score_on = folds[k], folds[1 - k]
            sc = replace(scorer, head=RankHead(int(cfg["dim"]), int(cfg["head_hidden"])).to(dev))
            sums[0] = sums.get(0, 0.0) + ndcg(sc, score_on) / 2

            def after(epoch: int, sc: Scorer = sc, users: torch.Tensor = score_on) -> None:
                sums[epoch] = sums.get(epoch, 0.0) + ndcg(sc, users) / 2

            _fit_head(sc, inputs, fit_on, max_epochs, cfg, after)
    return sums
