"""SASRec baseline: self-attentive sequential recommendation trained with full cross-entropy.

The strong form of Klenitskiy & Vasilev (RecSys 2023, "Turning Dross Into Gold Loss: is BERT4Rec
really better than SASRec?"): the original SASRec network (Kang & McAuley 2018: item + position
embeddings, pre-norm causal self-attention blocks, the output scored against the shared item
embedding) trained sequence-to-sequence with softmax cross-entropy over the whole catalogue
instead of one sampled negative. No item text, no side features: the field's anchor for
next-item prediction.

It trains on the split's ``train`` sequences (all but the last two events), picks its epoch
count and its hyper-parameters on validation NDCG@10 (the second-to-last event), and ranks the
test item from the user's whole history, as ours does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from training.metrics import rank_metrics, ranks_from_scores
from training.train import windows

__all__ = ["SASREC_GRID", "SASRec", "SASRecFit", "fit_sasrec", "sasrec_scores", "tune_sasrec"]

Log = Callable[[str], None]

# the validation grid (each point early-stopped on validation); shared settings below
# max_len 50 = the history window ours sees
SASREC_GRID: list[dict[str, Any]] = [
    {"max_len": 50, "dropout": 0.2},
    {"max_len": 50, "dropout": 0.5},
]
SASREC_BASE: dict[str, Any] = {
    "dim": 64,
    "blocks": 2,
    "heads": 1,
    "lr": 2e-3,
    "batch": 128,
    "epochs": 40,
    "patience": 6,  # validation NDCG@10 is noisy epoch to epoch (943 users)
}


class SASRec(nn.Module):
    """Item and position embeddings, causal pre-norm transformer blocks, shared output table."""

    def __init__(self, n_items: int, cfg: dict[str, Any]) -> None:
        super().__init__()
        d = int(cfg["dim"])
        self.max_len = int(cfg["max_len"])
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)  # token = item idx + 1
        nn.init.normal_(self.item_emb.weight, std=0.02)  # N(0, 1) logits train far slower
        self.pos_emb = nn.Embedding(self.max_len, d)
        layer = nn.TransformerEncoderLayer(
            d,
            int(cfg["heads"]),
            dim_feedforward=d,
            dropout=float(cfg["dropout"]),
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, int(cfg["blocks"]), enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(float(cfg["dropout"]))

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """Hidden state per position [B, L, d]; ``seq`` is left-padded with 0."""
        length = seq.shape[1]
        x = self.item_emb(seq) * (self.item_emb.embedding_dim**0.5)
        x = self.drop(x + self.pos_emb.weight[-length:])
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=seq.device), 1)
        eye = torch.eye(length, dtype=torch.bool, device=seq.device)
        block = (causal.unsqueeze(0) | (seq == 0).unsqueeze(1)) & ~eye.unsqueeze(0)
        heads = self.blocks.layers[0].self_attn.num_heads
        h = self.blocks(x, mask=block.repeat_interleave(heads, dim=0))
        out: torch.Tensor = self.norm(h)
        return out

    def item_table(self) -> torch.Tensor:
        """Output vectors [n_items, d] (row i = internal item i)."""
        return self.item_emb.weight[1:]


def _last_tokens(seqs: list[np.ndarray], length: int) -> torch.Tensor:
    """The last ``length`` items of each sequence as left-padded tokens [U, length]."""
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for u, s in enumerate(seqs):
        tail = s[-length:]
        if len(tail):
            out[u, length - len(tail) :] = tail + 1
    return torch.from_numpy(out)


def sasrec_scores(model: SASRec, seqs: list[np.ndarray], batch: int = 256) -> np.ndarray:
    """Scores over all items [U, N] for the next item after each sequence."""
    model.eval()
    tokens = _last_tokens(seqs, model.max_len)
    out = []
    with torch.inference_mode():
        table = model.item_table()
        for i in range(0, len(tokens), batch):
            out.append((model(tokens[i : i + batch])[:, -1] @ table.t()).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.item_table().shape[0]))


@dataclass
class SASRecFit:
    """A trained model with the validation figures that chose it."""

    model: SASRec
    cfg: dict[str, Any]
    epochs: int  # epochs of the kept state
    val_ndcg: float


def fit_sasrec(
    train: list[np.ndarray],
    valid: np.ndarray,
    n_items: int,
    cfg: dict[str, Any],
    seed: int,
    log: Log,
) -> SASRecFit:
    """Train with full-catalogue cross-entropy; keep the epoch with the best validation NDCG@10."""
    torch.manual_seed(seed)
    model = SASRec(n_items, cfg)
    win = windows(train, model.max_len)
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]), betas=(0.9, 0.98))
    gen = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state, bad = -1.0, 0, None, 0
    bs = int(cfg["batch"])
    for epoch in range(1, int(cfg["epochs"]) + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(win), generator=gen)
        for i in range(0, len(win), bs):
            w = win[perm[i : i + bs]]
            h = model(w[:, :-1])
            tgt = w[:, 1:]
            keep = tgt > 0
            loss = nn.functional.cross_entropy(h[keep] @ model.item_table().t(), tgt[keep] - 1)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
        ndcg = rank_metrics(ranks_from_scores(sasrec_scores(model, train), valid, train))["ndcg@10"]
        log(f"    sasrec epoch {epoch}: val ndcg@10 {ndcg:.4f} ({time.perf_counter() - t0:.1f}s)")
        if ndcg > best:
            best, best_epoch, bad = ndcg, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= int(cfg["patience"]):
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    return SASRecFit(model, cfg, best_epoch, best)


def tune_sasrec(
    train: list[np.ndarray],
    valid: np.ndarray,
    n_items: int,
    seed: int,
    log: Log,
    grid: list[dict[str, Any]] | None = None,
    base: dict[str, Any] | None = None,
) -> SASRecFit:
    """Fit every grid point (early-stopped on validation); return the best on validation."""
    fits = []
    for point in SASREC_GRID if grid is None else grid:
        cfg = {**SASREC_BASE, **(base or {}), **point}
        log(f"  sasrec {point}:")
        fits.append(fit_sasrec(train, valid, n_items, cfg, seed, log))
        log(f"  sasrec {point}: val ndcg@10 {fits[-1].val_ndcg:.4f} at epoch {fits[-1].epochs}")
    return max(fits, key=lambda f: f.val_ndcg)
