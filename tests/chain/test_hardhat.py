"""The same deploy-and-round path against a real JSON-RPC chain: a hardhat@2 node the test starts."""

from __future__ import annotations

import pytest

from codecoop.chain import Deployment, connect, reverts
from codecoop.chain.clients import Phase, UpdateDisclosure
from codecoop.chain.devtools import DevFederation
from codecoop.chain.hardhat import HardhatNode

from .conftest import PARAMS

pytestmark = pytest.mark.daemon


@pytest.fixture(scope="module")
def hardhat(tmp_path_factory):
    with HardhatNode(log_path=tmp_path_factory.mktemp("hardhat") / "node.log") as node:
        yield node


def test_a_full_round_and_a_governance_change_on_a_hardhat_node(hardhat, tmp_path):
    chain = connect(hardhat.url)
    assert not chain.embedded and chain.chain_id == 31337
    fed = DevFederation.create(4, PARAMS, chain=chain)
    record = fed.run_round()
    assert record.accepted == (0, 1, 2, 3)
    assert fed.deployment.rounds.phase(record.round) is Phase.COMPLETED
    assert fed.deployment.rounds.current_base() == record.aggregate_cid
    assert all(m > 0 for m in record.minted.values())
    with pytest.raises(reverts.AlreadyClaimed):
        fed.deployment.rounds.claim(fed.members[0], record.round)  # a typed revert over JSON-RPC
    rounds = fed.deployment.rounds
    fed.pass_proposal([(rounds.address, rounds.encode("setQuorum", 6000))], "quorum 60%")
    assert rounds.params().quorum_bps == 6000
    reattached = Deployment.load(fed.deployment.save(tmp_path / "d.json"), connect(hardhat.url))
    assert reattached.rounds.current_round() == record.round


def test_reverts_over_json_rpc_are_typed_and_named(hardhat):
    fed = DevFederation.create(2, PARAMS, chain=connect(hardhat.url))
    r = fed.deployment.rounds.open_round(fed.members[0])
    update = UpdateDisclosure(r, "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq", 5)
    fed.deployment.rounds.commit_update(fed.members[0], update)
    with pytest.raises(reverts.AlreadySubmitted) as e:
        fed.deployment.rounds.commit_update(fed.members[0], update)
    assert "one update per round" in str(e.value)
