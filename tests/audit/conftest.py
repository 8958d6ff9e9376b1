"""A recorded federation with real adapters in a real store: four members, three rounds (one with a
harmful update that the honest voters reject). Tests that add rounds roll the chain back afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from codecoop.audit.synthetic import SyntheticFederation
from codecoop.chain.devtools import DevFederation
from codecoop.chain.params import FederationParams
from codecoop.storage import LocalStore

#: Windows that fit one transaction per member per phase; short epochs so the history spans several.
PARAMS = FederationParams(
    submit_window=12, commit_window=10, reveal_window=10, confirm_window=12, epoch_length=60,
    voting_period=20, vote_extension=5,
)  # fmt: skip


@dataclass
class History:
    sim: SyntheticFederation
    store: LocalStore
    root: Path

    @property
    def fed(self) -> DevFederation:
        return self.sim.fed


@pytest.fixture(scope="session")
def _history(tmp_path_factory: pytest.TempPathFactory) -> History:
    root = tmp_path_factory.mktemp("store")
    store = LocalStore(root, durable=False)
    sim = SyntheticFederation(DevFederation.create(4, PARAMS), store, seed=7)
    sim.run_round()
    sim.run_round(harmful=[2])
    sim.run_round(submitters=[0, 1, 3])
    return History(sim, store, root)


@pytest.fixture
def history(_history: History) -> Iterator[History]:
    """The recorded federation; rounds a test adds are rolled back after it."""
    snapshot = _history.fed.chain.snapshot()
    yield _history
    _history.fed.chain.revert_to(snapshot)
