"""Drills as pytest items: collection, running, judging, rollback guarantee and fixtures."""

from __future__ import annotations
