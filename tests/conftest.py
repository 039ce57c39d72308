"""Shared fixtures for the whole suite; `tests.support.leftovers` guards against stray processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.procs import redis_server

pytest_plugins = ["tests.support.leftovers"]


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real, empty redis-server on a free loopback port, stopped after the test."""
    with redis_server() as url:
        yield url
