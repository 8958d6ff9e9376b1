"""Fixtures for the chain tests: one deployment per session, reset to a snapshot after each test."""

from __future__ import annotations

import pytest

from codecoop.chain.devtools import DevFederation
from codecoop.chain.params import FederationParams

#: Small windows and epochs so that tests reach every phase in a few blocks.
PARAMS = FederationParams(
    submit_window=20,
    commit_window=15,
    reveal_window=15,
    confirm_window=15,
    epoch_length=200,
    voting_period=20,
    vote_extension=5,
)


@pytest.fixture(scope="session")
def _federation() -> DevFederation:
    return DevFederation.create(4, PARAMS)


@pytest.fixture
def fed(_federation: DevFederation):
    """A federation of 4 active, self-delegated members; every change is rolled back after the test."""
    snapshot = _federation.chain.snapshot()
    members = list(_federation.members)
    yield _federation
    _federation.chain.revert_to(snapshot)
    _federation.members[:] = members
