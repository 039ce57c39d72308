"""Fixtures of the sensitivity tests: pytester and one reference stack per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sensitivity.stackutil import catalogue_stack


def pytest_configure(config: pytest.Config) -> None:
    """Load pytester for this folder (``pytest_plugins`` is only allowed in the top conftest)."""
    config.pluginmanager.import_plugin("pytester")


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """State dir of a live reference stack (reused via CHAOS_REC_CATALOGUE_STATE_DIR)."""
    with catalogue_stack(tmp_path_factory.mktemp("sensitivity-stack")) as sdir:
        yield sdir
