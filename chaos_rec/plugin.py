"""pytest plugin entry point (``pytest11``): options, ini keys and markers only."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "drill: a disaster-recovery drill (runs faults against a live stack)"
    )
