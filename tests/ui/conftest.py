"""A recorded federation for the dashboard: four members, three rounds with real adapters in a real
store, a passed parameter proposal, a release, and proposals whose texts are XSS payloads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from codecoop.audit.synthetic import SyntheticFederation
from codecoop.chain.devtools import DevFederation
from codecoop.chain.params import FederationParams
from codecoop.storage import LocalStore

PARAMS = FederationParams(
    submit_window=12, commit_window=10, reveal_window=10, confirm_window=12, epoch_length=60,
    voting_period=20, vote_extension=5,
)  # fmt: skip

#: Strings an attacker can put on the chain or in the store; none may run as script in a page.
XSS = [
    "<script>window.__pwned = 1</script>",
    '"><img src=x onerror="window.__pwned = 2">',
    '<svg onload="window.__pwned = 3"></svg>',
    "javascript:window.__pwned = 4",
    "</script><script>window.__pwned = 5</script>",
]


@dataclass
class Recorded:
    sim: SyntheticFederation
    store: LocalStore
    root: Path
    xss_proposal: int
    passed_proposal: int

    @property
    def fed(self) -> DevFederation:
        return self.sim.fed


def record(root: Path) -> Recorded:
    from codecoop.governance import release, set_parameter

    store = LocalStore(root, durable=False)
    sim = SyntheticFederation(DevFederation.create(4, PARAMS), store, seed=11)
    sim.run_round()
    sim.run_round(harmful=[2])
    last = sim.run_round(submitters=[0, 1, 3])
    fed, d = sim.fed, sim.fed.deployment
    quorum = set_parameter(d, [("quorum", "7500")], "Raise the quorum to 75%")
    passed = fed.pass_proposal(list(quorum.calls), quorum.description, voters=[0, 1, 2])
    rel = release(d, "v1", last.aggregate_cid, description="Release v1")
    fed.pass_proposal(list(rel.calls), rel.description, voters=[0, 1, 2])
    hostile = set_parameter(d, [("confirmations", "3")], "\n".join(XSS))
    xss = d.governor.propose(fed.members[1], list(hostile.calls), hostile.description)
    fed.chain.mine(d.params.voting_delay + 1)
    d.governor.cast_vote(fed.members[2], xss, 0, XSS[1])
    d.members.join(fed.chain.new_account(), XSS[2], [])
    return Recorded(sim, store, root, xss, passed)


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return record(tmp_path_factory.mktemp("ui-store"))
