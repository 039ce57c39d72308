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

    def pad(self, histories: list[list[int]]) -> torch.Tensor:
        """Right-padded [B, Lmax] tensor of full histories; padding = n_items (a dummy slot)."""
        width = max([len(h) for h in histories] + [1])
        out = torch.full((len(histories), width), self.n_items, dtype=torch.long)
        for b, h in enumerate(histories):
            if h:
                out[b, : len(h)] = torch.tensor(h, dtype=torch.long)
        return out.to(self.item_vecs.device)

    def seqs(self, padded: torch.Tensor) -> torch.Tensor:
        """Left-padded [B, L] tensor of item idx+1 (last ``max_history`` items), 0 = padding."""
        n = self.n_items
        valid = padded != n
        lens = valid.sum(1)
        # shift each row so that its items end at the right edge, then keep the last L columns
        width = padded.shape[1]
        pos = torch.arange(width, device=padded.device).unsqueeze(0)
        src = (pos - (width - lens.unsqueeze(1))).clamp(min=0)
        shifted = torch.gather(padded, 1, src)
        shifted = torch.where(pos >= width - lens.unsqueeze(1), shifted + 1, 0)
        length = self.max_history
        if width >= length:
            return shifted[:, width - length :]
        return torch.cat([shifted.new_zeros(len(padded), length - width), shifted], dim=1)

    def user_vecs(self, padded: torch.Tensor) -> torch.Tensor:
        """User vectors [B, d]; rows with no history are zero."""
        seq = self.seqs(padded)
        u = self.model.user_vec(seq, self.item_vecs)
        empty = (seq[:, -1] == 0).unsqueeze(1)
        return torch.where(empty, torch.zeros_like(u), u)

    def retrieval(
        self,
        histories: list[list[int]] | torch.Tensor,
        qvecs: torch.Tensor | None,
        exclude_seen: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(user vectors [B, d], scores over all items [B, N]) with seen items at -inf."""
        padded = histories if isinstance(histories, torch.Tensor) else self.pad(histories)
        u = self.user_vecs(padded)
        if qvecs is not None:  # no history: the query alone
            empty = (padded == self.n_items).all(1, keepdim=True)
            u = torch.where(empty, qvecs, u + self.query_weight * qvecs)
        scores = u @ self.item_vecs.t()
        # no history and no query: popularity order
        blank = (u.abs().sum(1) == 0).unsqueeze(1)
        scores = torch.where(blank, self.logpop.unsqueeze(0).expand_as(scores), scores)
        if exclude_seen:
            ext = torch.cat([scores, scores.new_zeros(len(scores), 1)], dim=1)
            ext.scatter_(1, padded, float("-inf"))
            scores = ext[:, :-1]
        return u, scores

    def profiles(self, padded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(primary-category shares [B, C], genre profile [B, C]) of each history."""
        n, c = self.n_items, self.genre_mh.shape[1]
        valid = (padded != n).float()
        lens = valid.sum(1, keepdim=True).clamp(min=1.0)
        cats = torch.where(padded != n, self.item_cat[padded.clamp(max=n - 1)], -1)
        onehot = torch.zeros(len(padded), c + 1, device=padded.device)
        onehot.scatter_add_(1, cats + 1, valid)
        genre = (self.genre_mh[padded.clamp(max=n - 1)] * valid.unsqueeze(-1)).sum(1) / lens
        return onehot[:, 1:] / lens, genre

    def head_logits(
        self,
        histories: list[list[int]] | torch.Tensor,
        u: torch.Tensor,
        cand: torch.Tensor,
        cand_scores: torch.Tensor,
        profiles: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Ranking-head logits [B, C] for candidate indices ``cand`` [B, C]."""
        if profiles is None:
            padded = histories if isinstance(histories, torch.Tensor) else self.pad(histories)
            profiles = self.profiles(padded)
        cat_share, genre = profiles
        cc = self.item_cat[cand]
        cat_aff = torch.where(
            cc >= 0, torch.gather(cat_share, 1, cc.clamp(min=0)), torch.zeros_like(cand_scores)
        )
        g = self.genre_mh[cand]  # [B, C, G]
        genre_aff = (g * genre.unsqueeze(1)).sum(-1) / g.sum(-1).clamp(min=1.0)
        # retrieval score relative to the user's best candidate (scale-free across users)
        top = cand_scores.max(dim=1, keepdim=True).values
        rel = torch.nan_to_num(cand_scores - top, nan=-30.0, neginf=-30.0).clamp(-30.0, 0.0)
        feats = head_features(rel / 5.0, self.logpop[cand], cat_aff, genre_aff)
        out: torch.Tensor = self.head(u, self.item_vecs[cand], feats)
        return out

    def rank(
        self,
        histories: list[list[int]] | torch.Tensor,
        qvecs: torch.Tensor | None,
        k: int,
        exclude_seen: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k internal indices [B, k] and interaction probabilities [B, k]."""
        padded = histories if isinstance(histories, torch.Tensor) else self.pad(histories)
        u, scores = self.retrieval(padded, qvecs, exclude_seen)
        c = min(max(self.rerank, k), self.n_items)
        cand_scores, cand = scores.topk(c, dim=1)
        probs = torch.sigmoid(self.head_logits(padded, u, cand, cand_scores))
        probs = torch.where(torch.isinf(cand_scores), torch.zeros_like(probs), probs)
        order = probs.argsort(dim=1, descending=True, stable=True)[:, :k]
        return torch.gather(cand, 1, order), torch.gather(probs, 1, order)
