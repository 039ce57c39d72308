"""chaos-rec: disaster-recovery drills for AI recommender serving, run as tests."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
