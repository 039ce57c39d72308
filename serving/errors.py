"""Exceptions of serving.

ServingError
 ├── BadRequest           invalid inference/recommend request (400 / INVALID_ARGUMENT)
 ├── ModelNotReady        no model loaded or warm-up pending (503 / UNAVAILABLE)
 ├── Overloaded           queue full, request shed (503 / RESOURCE_EXHAUSTED)
 ├── DeadlineExceeded     the request's deadline passed (504 / DEADLINE_EXCEEDED)
 ├── BundleRefused        hot reload refused (bad checksum, failed warm-up) (409)
 ├── FeatureStoreError    the feature store failed or timed out (never reaches a client)
 └── NoReplicaAvailable   gateway: no replica could answer (503)
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "BundleRefused",
    "DeadlineExceeded",
    "FeatureStoreError",
    "ModelNotReady",
    "NoReplicaAvailable",
    "Overloaded",
    "ServingError",
]


class ServingError(Exception):
    """Root of every error serving raises on purpose."""


class BadRequest(ServingError):
    """The request is invalid."""


class ModelNotReady(ServingError):
    """No model is loaded and warmed up."""


class ModelRetired(ModelNotReady):
    """The model was swapped out (hot reload) just before this batch could use it."""


class Overloaded(ServingError):
    """The queue is full; the request was shed."""


class DeadlineExceeded(ServingError):
    """The request's deadline passed."""


class BundleRefused(ServingError):
    """A bundle failed verification or warm-up and was not loaded."""


class FeatureStoreError(ServingError):
    """The feature store failed or timed out."""


class NoReplicaAvailable(ServingError):
    """No replica could answer."""
