"""The `Model` seam (what serving needs from a bundle) and bundle loading."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from serving.errors import BundleRefused


class Model(Protocol):
    """What the server needs from a loaded bundle (training.bundle.RecommenderBundle)."""

    model_version: str
    item_ids: npt.NDArray[np.int64]
    item_category: npt.NDArray[Any]
    categories: list[str]
    popular: npt.NDArray[Any]
    popular_by_category: dict[int, npt.NDArray[Any]]
    max_history: int

    def recommend(
        self,
        histories: list[list[int]],
        queries: list[str | None],
        k: int,
        exclude_seen: bool = True,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Top-k external item ids and scores for a batch, one forward pass."""
        ...

    def warmup(self) -> None:
        """Run one inference so that the first request is not slow."""
        ...


def pick_device(device: str) -> str:
    """Resolve `auto` to cuda when a CUDA device is present, else cpu."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def size_threads(threads: int) -> int:
    """Set torch's intra-op threads (0 = half the cores, 1..8: room for the loop and neighbours)."""
    import torch

    n = threads or max(1, min(8, (os.cpu_count() or 1) // 2))
    torch.set_num_threads(n)
    return n


def load_model(path: Path, *, device: str, verify: bool, warm: bool = True) -> Model:
    """Load, verify (unless `checksum` is off) and warm up (unless `warm` is False) a bundle,
    or raise BundleRefused."""
    try:
        from training.bundle import load_bundle
        from training.errors import TrainingError
    except ImportError as exc:  # the training package is part of this distribution
        raise BundleRefused(f"cannot import training.bundle: {exc}") from exc
    if not Path(path).is_dir():
        raise BundleRefused(f"bundle {path} is not a directory")
    try:
        model: Model = load_bundle(path, device=device, verify=verify)
    except TrainingError as exc:
        raise BundleRefused(f"bundle {path} refused: {exc}") from exc
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise BundleRefused(f"bundle {path} could not be loaded: {exc}") from exc
    if not warm:
        return model
    try:
        model.warmup()
    except Exception as exc:  # any warm-up failure refuses the bundle; the old model keeps serving
        raise BundleRefused(f"bundle {path} failed warm-up: {exc}") from exc
    return model
