"""Fixtures of the sensitivity tests: one reference stack per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sensitivity.stackutil import catalogue_stack


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """State dir of a live reference stack (reused via CHAOS_REC_CATALOGUE_STATE_DIR)."""
    with catalogue_stack(tmp_path_factory.mktemp("sensitivity-stack")) as sdir:
        yield sdir
