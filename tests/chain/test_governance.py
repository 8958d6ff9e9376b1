"""The DAO end to end: a parameter change and a model release through propose, vote, queue, execute."""

from __future__ import annotations

import pytest

from codecoop.chain import reverts
from codecoop.chain.cid import cid_to_bytes
from codecoop.chain.clients import MemberStatus, ProposalState
from codecoop.chain.deployment import raw_cid


def test_a_parameter_change_passes_through_the_governor_and_the_timelock(fed):
    rounds = fed.deployment.rounds
    calls = [
        (rounds.address, rounds.encode("setQuorum", 7500)),
        (rounds.address, rounds.encode("setAggregationStrategy", "fedtrimmedavg:beta=0.2")),
    ]
    proposal = fed.pass_proposal(calls, "Raise the quorum to 75% and trim outliers")
    assert fed.deployment.governor.state(proposal) is ProposalState.EXECUTED
    assert rounds.params().quorum_bps == 7500
    assert rounds.aggregation_strategy() == "fedtrimmedavg:beta=0.2"
    assert [e.args["quorumBps"] for e in rounds.events("QuorumSet")][-1] == 7500


def test_a_model_release_is_written_by_the_timelock_after_a_passed_proposal(fed):
    models = fed.deployment.models
    cid, metrics = raw_cid(b"model v1"), raw_cid(b"metrics v1")
    calls = [(models.address, models.encode("release", "v1", cid_to_bytes(cid), 0, cid_to_bytes(metrics), "tiny"))]
    fed.pass_proposal(calls, "Release v1")
    v = models.version_by_tag("v1")
    assert (v.id, v.cid, v.metrics_cid, v.parent, v.base_model_id) == (1, cid, metrics, 0, "tiny")
    child = [(models.address, models.encode("release", "v2", cid_to_bytes(raw_cid(b"v2")), 1, b"", "tiny"))]
    fed.pass_proposal(child, "Release v2 on top of v1")
    assert models.version_by_tag("v2").parent == 1
    assert [v.tag for v in models.versions()] == ["v1", "v2"]


def test_governance_admits_pending_members_when_admission_needs_approval(fed):
    members = fed.deployment.members
    fed.pass_proposal([(members.address, members.encode("setAdmission", 1))], "Admission by approval")
    applicant = fed.chain.new_account()
    members.join(applicant, "12D3KooWapplicant")
    assert members.status(applicant.address) is MemberStatus.PENDING
    assert fed.deployment.token.balance_of(applicant.address) == 0
    with pytest.raises(reverts.NotActiveMember):
        fed.deployment.rounds.open_round(applicant)
    fed.pass_proposal([(members.address, members.encode("approve", applicant.address))], "Admit the applicant")
    assert members.status(applicant.address) is MemberStatus.ACTIVE
    assert fed.deployment.token.balance_of(applicant.address) == fed.deployment.params.welcome_grant


def test_a_suspended_member_cannot_act_until_reinstated(fed):
    members, target = fed.deployment.members, fed.members[3]
    fed.pass_proposal([(members.address, members.encode("suspend", target.address))], "Suspend member 3")
    with pytest.raises(reverts.NotActiveMember):
        fed.deployment.rounds.open_round(target)
    fed.pass_proposal([(members.address, members.encode("reinstate", target.address))], "Reinstate member 3")
    assert members.is_active(target.address)


def test_a_proposal_without_enough_votes_is_defeated_and_cannot_be_queued(fed):
    gov, rounds = fed.deployment.governor, fed.deployment.rounds
    calls = [(rounds.address, rounds.encode("setQuorum", 100))]
    proposal = gov.propose(fed.members[0], calls, "Lower the quorum")
    fed.chain.mine(fed.deployment.params.voting_delay + 1)
    for m in fed.members[:3]:
        gov.cast_vote(m, proposal, 0)
    gov.cast_vote(fed.members[3], proposal, 1)
    fed.chain.mine_to(gov.deadline(proposal) + 1)
    assert gov.state(proposal) is ProposalState.DEFEATED
    with pytest.raises(reverts.GovernorUnexpectedProposalState):
        gov.queue(fed.members[0], calls, "Lower the quorum")
    assert rounds.params().quorum_bps == fed.deployment.params.quorum_bps


def test_transfers_can_be_enabled_only_by_governance(fed):
    token = fed.deployment.token
    fed.pass_proposal([(token.address, token.encode("setTransfersEnabled", True))], "Enable transfers")
    token.transfer(fed.members[0], fed.members[1].address, 1)
    assert token.balance_of(fed.members[1].address) == fed.deployment.params.welcome_grant + 1


def test_a_release_that_breaks_the_registry_rules_fails_at_execution_with_the_named_error(fed):
    models = fed.deployment.models
    first = [(models.address, models.encode("release", "v1", cid_to_bytes(raw_cid(b"a")), 0, b"", "tiny"))]
    fed.pass_proposal(first, "Release v1")
    again = [(models.address, models.encode("release", "v1", cid_to_bytes(raw_cid(b"b")), 0, b"", "tiny"))]
    with pytest.raises(reverts.TagExists):
        fed.pass_proposal(again, "Release v1 again")
    orphan = [(models.address, models.encode("release", "v9", cid_to_bytes(raw_cid(b"c")), 7, b"", "tiny"))]
    with pytest.raises(reverts.UnknownVersion):
        fed.pass_proposal(orphan, "Release with a parent that does not exist")
    assert models.version_count() == 1


def test_out_of_range_parameters_are_refused_even_through_governance(fed):
    rounds = fed.deployment.rounds
    for fn, args, name in [
        ("setQuorum", (0,), "quorumBps"),
        ("setWindows", (1, 0, 1, 1, 1), "windows"),
        ("setMaxUpdates", (113,), "maxUpdates"),
    ]:
        with pytest.raises(reverts.InvalidParameter) as e:
            fed.pass_proposal([(rounds.address, rounds.encode(fn, *args))], f"bad {name}")
        assert name in str(e.value)
