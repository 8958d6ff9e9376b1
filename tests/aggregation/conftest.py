"""Fixtures for the aggregation tests."""

from __future__ import annotations

import pytest

from codecoop.aggregation import Update

from .data import make_updates


@pytest.fixture
def updates() -> list[Update]:
    return make_updates(7, seed=1, big=True)
