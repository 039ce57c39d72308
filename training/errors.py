"""Exceptions of training.

TrainingError
 ├── DataError       dataset package missing, corrupt file or wrong schema
 ├── BundleError     bundle missing, incomplete or failing its checksums
 └── StoreError      feature materialisation/verification against Redis failed
"""

from __future__ import annotations

__all__ = ["BundleError", "DataError", "StoreError", "TrainingError"]


class TrainingError(Exception):
    """Root of every error training raises on purpose."""


class DataError(TrainingError):
    """A dataset is missing, corrupt or has the wrong schema."""


class BundleError(TrainingError):
    """A model bundle is missing, incomplete or fails its checksums."""


class StoreError(TrainingError):
    """Materialising or verifying features in Redis failed."""
