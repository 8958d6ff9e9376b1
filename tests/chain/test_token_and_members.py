"""ContributionToken caps, transfers and delegation; MemberRegistry admission; governance-only setters."""

from __future__ import annotations

import pytest

from codecoop.chain import reverts
from codecoop.chain.clients import MemberStatus
from codecoop.chain.devtools import DevFederation
from codecoop.chain.params import FederationParams
from codecoop.chain.units import TOKEN_UNIT

from .test_rounds import open_with_updates, vote_all


def test_joining_admits_the_member_with_the_welcome_grant(fed):
    newcomer = fed.chain.new_account()
    fed.deployment.members.join(newcomer, "12D3KooWnew", ["/ip4/127.0.0.1/tcp/4100"])
    info = fed.deployment.members.member(newcomer.address)
    assert info.status is MemberStatus.ACTIVE and info.peer_id == "12D3KooWnew"
    assert info.multiaddrs == ("/ip4/127.0.0.1/tcp/4100",)
    assert fed.deployment.token.balance_of(newcomer.address) == fed.deployment.params.welcome_grant
    assert newcomer.address in [m.address for m in fed.deployment.members.active_members()]


def test_joining_twice_reverts_AlreadyMember(fed):
    with pytest.raises(reverts.AlreadyMember):
        fed.deployment.members.join(fed.members[0], "12D3KooWagain")


def test_joining_needs_a_peer_id_and_at_most_eight_addresses(fed):
    newcomer = fed.chain.new_account()
    with pytest.raises(reverts.EmptyPeerId):
        fed.deployment.members.join(newcomer, "")
    with pytest.raises(reverts.TooManyMultiaddrs):
        fed.deployment.members.join(newcomer, "12D3KooWx", [f"/ip4/127.0.0.1/tcp/{p}" for p in range(9)])


def test_a_member_who_leaves_keeps_its_earned_rewards_but_acts_no_more_and_cannot_rejoin(fed):
    d, leaver = fed.deployment, fed.members[3]
    r, _ = open_with_updates(fed)
    vote_all(fed, r, lambda voter, update: (True, 1000))
    d.rounds.finalize(fed.members[0], r)
    owed = d.rounds.entitlement(r, leaver.address)
    active = d.members.active_count()
    assert owed > 0
    d.members.leave(leaver)
    assert d.members.status(leaver.address) is MemberStatus.LEFT and not d.members.is_active(leaver.address)
    assert d.members.active_count() == active - 1
    assert leaver.address not in [m.address for m in d.members.active_members()]
    assert d.rounds.claim(leaver, r).minted == owed, "what it earned before leaving stays claimable"
    with pytest.raises(reverts.NotActiveMember):
        d.rounds.open_round(leaver)
    with pytest.raises(reverts.AlreadyMember):
        d.members.join(leaver, "12D3KooWback")
    with pytest.raises(reverts.NotMember):
        d.members.leave(leaver)
    with pytest.raises(reverts.NotMember):
        d.members.update_endpoint(leaver, "12D3KooWmoved", [])


def test_only_members_can_leave_and_a_left_member_cannot_be_removed(fed):
    d = fed.deployment
    with pytest.raises(reverts.NotMember):
        d.members.leave(fed.chain.new_account())
    d.members.leave(fed.members[2])
    call = (d.members.address, d.members.encode("remove", fed.members[2].address))
    with pytest.raises(reverts.InvalidStatus):
        fed.pass_proposal([call], "Remove a member who already left", voters=[0, 1, 3])


def test_a_member_updates_its_own_endpoint(fed):
    fed.deployment.members.update_endpoint(fed.members[2], "12D3KooWmoved", ["/ip4/127.0.0.1/tcp/5999"])
    assert fed.deployment.members.member(fed.members[2].address).multiaddrs == ("/ip4/127.0.0.1/tcp/5999",)


@pytest.mark.parametrize(
    "contract, fn, args",
    [
        ("members", "approve", ["0x" + "11" * 20]),
        ("members", "suspend", ["0x" + "11" * 20]),
        ("members", "setAdmission", [1]),
        ("rounds", "setQuorum", [6000]),
        ("rounds", "setWindows", [5, 5, 5, 5, 5]),
        ("rounds", "setAggregationStrategy", ["fedmedian"]),
        ("token", "setTransfersEnabled", [True]),
        ("token", "setEpochCap", [1]),
        ("token", "setMinter", ["0x" + "11" * 20]),
        ("models", "release", ["v1", bytes([1, 0x55, 0x12, 0x20]) + b"\x01" * 32, 0, b"", "tiny"]),
        ("models", "setMinImprovement", [5]),
    ],
)
def test_governance_calls_from_anyone_but_the_timelock_revert(fed, contract, fn, args):
    client = getattr(fed.deployment, contract)
    with pytest.raises(reverts.OwnableUnauthorizedAccount) as e:
        fed.chain.transact(client.contract.functions[fn](*args), fed.members[0])
    assert "timelock" in str(e.value)


def test_nobody_but_the_round_contract_and_the_registry_can_mint(fed):
    token = fed.deployment.token
    with pytest.raises(reverts.UnauthorizedMinter):
        fed.chain.transact(token.contract.functions.reserve(10), fed.members[0])
    with pytest.raises(reverts.UnauthorizedMinter):
        fed.chain.transact(token.contract.functions.mintAllocation(fed.members[0].address, 0, 1, b"\x00" * 32), fed.members[0])
    with pytest.raises(reverts.UnauthorizedMinter):
        fed.chain.transact(token.contract.functions.grantWelcome(fed.members[0].address), fed.members[0])


def test_tokens_are_not_transferable_but_delegation_always_works(fed):
    token = fed.deployment.token
    a, b = fed.members[0], fed.members[1]
    with pytest.raises(reverts.TransfersDisabled):
        token.transfer(a, b.address, 1)
    token.delegate(a, b.address)
    assert token.delegates(a.address) == b.address
    assert token.votes(b.address) == 2 * fed.deployment.params.welcome_grant


def test_the_timelock_owns_everything_and_the_deployer_keeps_no_role(fed):
    timelock = fed.deployment.timelock.address
    for client in (fed.deployment.token, fed.deployment.members, fed.deployment.rounds, fed.deployment.models):
        assert client._call("owner") == timelock
    deployer = fed.deployment.record.deployer
    assert not fed.deployment.timelock.has_role("DEFAULT_ADMIN_ROLE", deployer)
    assert not fed.deployment.timelock.has_role("PROPOSER_ROLE", deployer)
    assert fed.deployment.timelock.has_role("PROPOSER_ROLE", fed.deployment.governor.address)


def _capped(cap_total: int, cap_member: int) -> DevFederation:
    params = FederationParams(
        submit_window=20,
        commit_window=15,
        reveal_window=15,
        confirm_window=15,
        epoch_length=10_000,
        epoch_cap=cap_total,
        member_epoch_cap=cap_member,
        welcome_grant=0,
    )
    return DevFederation.create(4, params)


def test_a_round_that_would_pass_the_epoch_cap_is_cut_and_shared_pro_rata():
    fed = _capped(cap_total=100 * TOKEN_UNIT, cap_member=10**6 * TOKEN_UNIT)
    r, _ = open_with_updates(fed)
    vote_all(fed, r, lambda v, u: (True, fed.deployment.params.reward_bound))
    result = fed.deployment.rounds.finalize(fed.members[0], r)
    assert result.granted == 100 * TOKEN_UNIT < result.requested
    (reserved,) = fed.deployment.token.events("Reserved")
    assert reserved.args["requested"] == result.requested and reserved.args["granted"] == result.granted
    minted = [fed.deployment.rounds.claim(m, r).minted for m in fed.members]
    owed = result.requested // 4
    assert minted == [owed * result.granted // result.requested] * 4
    assert sum(minted) <= 100 * TOKEN_UNIT
    assert fed.deployment.token.total_supply() == sum(minted)


def test_a_claim_over_the_member_epoch_cap_is_cut_and_the_event_says_so():
    fed = _capped(cap_total=10**6 * TOKEN_UNIT, cap_member=30 * TOKEN_UNIT)
    r, _ = open_with_updates(fed)
    vote_all(fed, r, lambda v, u: (True, fed.deployment.params.reward_bound))
    fed.deployment.rounds.finalize(fed.members[0], r)
    claim = fed.deployment.rounds.claim(fed.members[0], r)
    assert claim.amount > 30 * TOKEN_UNIT and claim.minted == 30 * TOKEN_UNIT
    (cut,) = fed.deployment.token.events("AllocationCut")
    assert cut.args["requested"] == claim.amount and cut.args["minted"] == 30 * TOKEN_UNIT
    epoch = fed.deployment.rounds.round(r).epoch
    assert fed.deployment.token.member_minted(epoch, fed.members[0].address) == 30 * TOKEN_UNIT


def test_epochs_roll_over_exactly_at_the_boundary_block(fed):
    token = fed.deployment.token
    start = token.current_epoch_start()
    length = fed.deployment.params.epoch_length
    epoch = token.current_epoch()
    boundary = start + length
    fed.chain.mine_to(boundary - 1)
    assert token.current_epoch() == epoch  # calls run against the head block
    assert token.epoch_of(boundary - 1) == epoch
    assert token.epoch_of(boundary) == epoch + 1
    fed.chain.mine_to(boundary)
    assert token.current_epoch() == epoch + 1
    assert token.current_epoch_start() == boundary


def test_a_new_epoch_gives_a_fresh_member_cap():
    fed = _capped(cap_total=10**6 * TOKEN_UNIT, cap_member=30 * TOKEN_UNIT)
    for _ in range(2):
        r, _ = open_with_updates(fed)
        vote_all(fed, r, lambda v, u: (True, fed.deployment.params.reward_bound))
        fed.deployment.rounds.finalize(fed.members[0], r)
        assert fed.deployment.rounds.claim(fed.members[0], r).minted == 30 * TOKEN_UNIT
        fed.chain.mine_to(fed.deployment.token.current_epoch_start() + fed.deployment.params.epoch_length)
    assert fed.deployment.token.balance_of(fed.members[0].address) == 60 * TOKEN_UNIT
