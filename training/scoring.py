"""The request-time scoring path (shared by evaluation and serving so both measure one thing).

history → user vector (+ optional query vector) → score all items (one matmul) →
ranking head over the top ``rerank`` candidates → interaction probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from training.model import RankHead, SeqRec, head_features

__all__ = ["Scorer"]


@dataclass
class Scorer:
    """Tensors and modules needed to score; all item values are internal indices."""

    model: SeqRec
    head: RankHead
    item_vecs: torch.Tensor  # [N, d]
    logpop: torch.Tensor  # [N] in [0, 1]
    item_cat: torch.Tensor  # [N] long, -1 none
    genre_mh: torch.Tensor  # [N, C] float multi-hot
    max_history: int
    rerank: int = 100
    query_weight: float = 1.0

    @property
    def n_items(self) -> int:
        """Catalogue size."""
        return int(self.item_vecs.shape[0])

    def seqs(self, histories: list[list[int]]) -> torch.Tensor:
        """Left-padded [B, L] tensor of item idx+1 (last ``max_history`` items)."""
        length = self.max_history
        out = torch.zeros(len(histories), length, dtype=torch.long)
        for b, h in enumerate(histories):
            tail = h[-length:]
            if tail:
                out[b, length - len(tail) :] = torch.tensor(tail, dtype=torch.long) + 1
        return out.to(self.item_vecs.device)

    def user_vecs(self, histories: list[list[int]]) -> torch.Tensor:
        """User vectors [B, d]; rows with no history are zero."""
        seq = self.seqs(histories)
        u = self.model.user_vec(seq, self.item_vecs)
        empty = (seq[:, -1] == 0).unsqueeze(1)
        return torch.where(empty, torch.zeros_like(u), u)

    def retrieval(
        self, histories: list[list[int]], qvecs: torch.Tensor | None, exclude_seen: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(user vectors [B, d], scores over all items [B, N]) with seen items at -inf."""
        u = self.user_vecs(histories)
        if qvecs is not None:
            u = u + self.query_weight * qvecs
        scores = u @ self.item_vecs.t()
        # no history and no query: popularity order
        blank = (u.abs().sum(1) == 0).unsqueeze(1)
        scores = torch.where(blank, self.logpop.unsqueeze(0).expand_as(scores), scores)
        if exclude_seen:
            for b, h in enumerate(histories):
                if h:
                    scores[b, torch.tensor(h, dtype=torch.long)] = float("-inf")
        return u, scores

    def profiles(self, histories: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(primary-category shares [B, C], genre profile [B, C]) of each history."""
        c = self.genre_mh.shape[1]
        cat_share = torch.zeros(len(histories), c + 1)
        genre = torch.zeros(len(histories), c)
        for b, h in enumerate(histories):
            if h:
                idx = torch.tensor(h, dtype=torch.long)
                cats = self.item_cat[idx].clamp(min=-1) + 1
                cat_share[b] = torch.bincount(cats, minlength=c + 1).float() / len(h)
                genre[b] = self.genre_mh[idx].mean(0)
        return cat_share[:, 1:].to(self.item_vecs.device), genre.to(self.item_vecs.device)

    def head_logits(
        self,
        histories: list[list[int]],
        u: torch.Tensor,
        cand: torch.Tensor,
        cand_scores: torch.Tensor,
    ) -> torch.Tensor:
        """Ranking-head logits [B, C] for candidate indices ``cand`` [B, C]."""
        cat_share, genre = self.profiles(histories)
        cc = self.item_cat[cand]
        cat_aff = torch.where(
            cc >= 0, torch.gather(cat_share, 1, cc.clamp(min=0)), torch.zeros_like(cand_scores)
        )
        g = self.genre_mh[cand]  # [B, C, G]
        genre_aff = (g * genre.unsqueeze(1)).sum(-1) / g.sum(-1).clamp(min=1.0)
        s = torch.nan_to_num(cand_scores, neginf=-30.0).clamp(-30.0, 30.0)
        feats = head_features(s / 10.0, self.logpop[cand], cat_aff, genre_aff)
        out: torch.Tensor = self.head(u, self.item_vecs[cand], feats)
        return out

    def rank(
        self,
        histories: list[list[int]],
        qvecs: torch.Tensor | None,
        k: int,
        exclude_seen: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k internal indices [B, k] and interaction probabilities [B, k]."""
        u, scores = self.retrieval(histories, qvecs, exclude_seen)
        c = min(max(self.rerank, k), self.n_items)
        cand_scores, cand = scores.topk(c, dim=1)
        probs = torch.sigmoid(self.head_logits(histories, u, cand, cand_scores))
        probs = torch.where(torch.isinf(cand_scores), torch.zeros_like(probs), probs)
        order = probs.argsort(dim=1, descending=True, stable=True)[:, :k]
        return torch.gather(cand, 1, order), torch.gather(probs, 1, order)
