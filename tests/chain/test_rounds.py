"""RoundManager: the round's phases, every revert path, acceptance and reward rules."""

from __future__ import annotations

import pytest

from codecoop.chain import reverts
from codecoop.chain.cid import cid_to_bytes
from codecoop.chain.clients import Ballot, Phase, UpdateDisclosure
from codecoop.chain.deployment import raw_cid
from codecoop.chain.devtools import commit_and_disclose
from codecoop.errors import ContractRevert


def cid(text: str) -> str:
    return raw_cid(text.encode())


def open_with_updates(fed, submitters=(0, 1, 2, 3)):
    """Open a round and let ``submitters`` commit to and disclose an update (the chain is left in the
    disclose window); returns (round id, RoundInfo)."""
    rounds = fed.deployment.rounds
    r = rounds.open_round(fed.members[0])
    commit_and_disclose(fed.deployment, [(fed.members[i], UpdateDisclosure(r, cid(f"u{r}-{i}"), 100 + i)) for i in submitters])
    return r, rounds.round(r)


def submit(fed, member, r, cid_, n_samples, meta=None):
    """Commit to one update in the submit window, mine to the disclose window and disclose it."""
    ((_, submitted),) = commit_and_disclose(fed.deployment, [(member, UpdateDisclosure(r, cid_, n_samples, meta))])
    return submitted


def to_phase(fed, r, phase: Phase):
    info = fed.deployment.rounds.round(r)
    target = {
        Phase.DISCLOSE: info.submit_end + 1,
        Phase.COMMIT: info.disclose_end + 1,
        Phase.REVEAL: info.commit_end + 1,
        Phase.FINALIZABLE: info.reveal_end + 1,
    }[phase]
    fed.chain.mine_to(target)
    assert fed.deployment.rounds.phase(r) is phase


def vote_all(fed, r, votes, voters=(0, 1, 2, 3)):
    """Commit and reveal ``votes(voter, update) -> (approve, delta)`` for every other member's update."""
    rounds = fed.deployment.rounds
    owners = {u.update_id: fed.members.index(next(m for m in fed.members if m.address == u.submitter)) for u in rounds.updates(r)}
    ballots = {i: Ballot.of({u: votes(i, u) for u, owner in owners.items() if owner != i}) for i in voters}
    to_phase(fed, r, Phase.COMMIT)
    for i in voters:
        rounds.commit_votes(fed.members[i], r, ballots[i])
    to_phase(fed, r, Phase.REVEAL)
    for i in voters:
        rounds.reveal_votes(fed.members[i], r, ballots[i])
    to_phase(fed, r, Phase.FINALIZABLE)
    return ballots


# ------------------------------------------------------------------ the happy path


def test_a_round_passes_through_every_phase_and_completes_on_k_matching_confirmations(fed):
    rounds = fed.deployment.rounds
    r, info = open_with_updates(fed)
    assert info.phase is Phase.DISCLOSE and info.update_count == 4 and info.base_cid is None
    vote_all(fed, r, lambda v, u: (True, 40_000))
    result = rounds.finalize(fed.members[0], r)
    assert result.accepted_ids == (0, 1, 2, 3)
    assert rounds.phase(r) is Phase.CONFIRM
    agg = cid("aggregate")
    rounds.confirm_aggregate(fed.members[0], r, agg)
    assert rounds.phase(r) is Phase.CONFIRM  # k = 2
    rounds.confirm_aggregate(fed.members[1], r, agg)
    assert rounds.phase(r) is Phase.COMPLETED
    assert rounds.round(r).global_cid == agg
    assert rounds.current_base() == agg
    r2 = rounds.open_round(fed.members[2])
    assert rounds.round(r2).base_cid == agg


def test_update_cids_and_sample_counts_are_recorded_exactly(fed):
    rounds = fed.deployment.rounds
    r = rounds.open_round(fed.members[0])
    c = cid("exact")
    meta = cid("meta")
    submit(fed, fed.members[1], r, c, 4242, meta)
    assert rounds.update(r, 0).cid == c
    assert rounds.update(r, 0).submitter == fed.members[1].address
    (event,) = rounds.events("UpdateSubmitted", round=r)
    assert event.args["nSamples"] == 4242
    assert event.args["metaCid"] == cid_to_bytes(meta)


def test_submitted_updates_read_the_events_as_typed_values_with_sample_counts_per_update(fed):
    rounds = fed.deployment.rounds
    r = rounds.open_round(fed.members[0])
    meta = cid("meta")
    commit_and_disclose(
        fed.deployment,
        [(fed.members[1], UpdateDisclosure(r, cid("first"), 4242, meta)), (fed.members[2], UpdateDisclosure(r, cid("second"), 7))],
    )
    first, second = rounds.submitted_updates(r, fed.deployment.record.block)
    assert (first.round, first.update_id, first.submitter) == (r, 0, fed.members[1].address)
    assert (first.cid, first.n_samples, first.meta_cid) == (cid("first"), 4242, meta)
    assert second.meta_cid is None and second.block >= first.block
    assert rounds.sample_counts(r, fed.deployment.record.block) == {0: 4242, 1: 7}
    assert [u.update_id for u in rounds.submitted_updates(r, submitter=fed.members[2].address)] == [1]


def test_committed_voters_lists_the_members_that_committed_in_the_round(fed):
    rounds = fed.deployment.rounds
    r, _ = open_with_updates(fed, submitters=(0, 1))
    to_phase(fed, r, Phase.COMMIT)
    rounds.commit_votes(fed.members[2], r, Ballot.of({0: (True, 1), 1: (True, 1)}))
    assert rounds.committed_voters(r, fed.deployment.record.block) == [fed.members[2].address]


def test_round_structs_are_decoded_by_their_abi_field_names(fed):
    rounds, params = fed.deployment.rounds, fed.deployment.params
    r, info = open_with_updates(fed, submitters=(0,))
    assert info.disclose_end - info.submit_end == params.disclose_window
    assert info.commit_end - info.disclose_end == params.commit_window
    assert info.reveal_end - info.commit_end == params.reveal_window
    assert (info.quorum_bps, info.confirmations, info.max_updates) == (params.quorum_bps, params.confirmations, params.max_updates)
    assert (info.submit_reward, info.voter_reward, info.reward_bound) == (params.submit_reward, params.voter_reward, params.reward_bound)
    assert (info.update_count, info.revealed_count, info.requested, info.granted) == (1, 0, 0, 0)
    p = rounds.params()
    assert (p.submit_window, p.disclose_window, p.confirm_window) == (params.submit_window, params.disclose_window, params.confirm_window)


# ------------------------------------------------------------------ revert paths


def test_committing_twice_in_a_round_reverts_AlreadySubmitted(fed):
    rounds = fed.deployment.rounds
    r = rounds.open_round(fed.members[0])
    rounds.commit_update(fed.members[1], UpdateDisclosure(r, cid("first"), 1))
    with pytest.raises(reverts.AlreadySubmitted) as e:
        rounds.commit_update(fed.members[1], UpdateDisclosure(r, cid("again"), 1))
    assert "one update per round" in str(e.value)
    assert isinstance(e.value, ContractRevert) and e.value.error == "AlreadySubmitted"


def test_disclosing_twice_reverts_AlreadySubmitted(fed):
    rounds = fed.deployment.rounds
    r = rounds.open_round(fed.members[0])
    ((_, first),) = commit_and_disclose(fed.deployment, [(fed.members[1], d := UpdateDisclosure(r, cid("once"), 3))])
    with pytest.raises(reverts.AlreadySubmitted):
        rounds.submit_update(fed.members[1], d)
    assert [u.update_id for u in rounds.updates(r)] == [first.update_id]


def test_without_preflight_a_revert_is_still_raised_typed_from_the_mined_receipt(fed):
    rounds = fed.deployment.rounds
    r = rounds.open_round(fed.members[0])
    rounds.commit_update(fed.members[1], UpdateDisclosure(r, cid("first"), 1))
    block = fed.chain.block_number
    fed.chain.preflight = False
    try:
        with pytest.raises(reverts.AlreadySubmitted):
            rounds.commit_update(fed.members[1], UpdateDisclosure(r, cid("again"), 1))
    finally:
        fed.chain.preflight = True
    assert fed.chain.block_number == block + 1, "the failed transaction was mined, not stopped before sending"
    assert rounds.round(r).update_count == 1


def test_committing_after_the_submit_window_or_disclosing_outside_the_disclose_window_reverts_WrongPhase(fed):
    rounds = fed.deployment.rounds
    r = rounds.open_round(fed.members[0])
    early = UpdateDisclosure(r, cid("early"), 1)
    rounds.commit_update(fed.members[1], early)
    with pytest.raises(reverts.WrongPhase):
        rounds.submit_update(fed.members[1], early)  # still the submit window: nothing may be disclosed yet
    to_phase(fed, r, Phase.DISCLOSE)
    with pytest.raises(reverts.WrongPhase):
        rounds.commit_update(fed.members[0], UpdateDisclosure(r, cid("late"), 1))
    to_phase(fed, r, Phase.COMMIT)
    with pytest.raises(reverts.WrongPhase):
        rounds.submit_update(fed.members[1], early)


def test_a_disclosure_must_match_the_commitment_exactly(fed):
    rounds = fed.deployment.rounds
    r = rounds.open_round(fed.members[0])
    committed = UpdateDisclosure(r, cid("mine"), 10, cid("meta"))
    rounds.commit_update(fed.members[1], committed)
    to_phase(fed, r, Phase.DISCLOSE)
    for other in (
        UpdateDisclosure(r, cid("someone else's"), 10, cid("meta"), committed.salt),  # another CID
        UpdateDisclosure(r, committed.cid, 11, cid("meta"), committed.salt),  # another sample count
        UpdateDisclosure(r, committed.cid, 10, None, committed.salt),  # another metadata CID
        UpdateDisclosure(r, committed.cid, 10, cid("meta")),  # another salt
    ):
        with pytest.raises(reverts.RevealMismatch):
            rounds.submit_update(fed.members[1], other)
    with pytest.raises(reverts.NoCommitment):
        rounds.submit_update(fed.members[2], UpdateDisclosure(r, committed.cid, 10, cid("meta"), committed.salt))  # no commitment
    assert rounds.update(r, 0) is None and rounds.updates(r) == []  # committed, not disclosed: no CID
    rounds.submit_update(fed.members[1], committed)
    assert rounds.update(r, 0).cid == committed.cid and rounds.update(r, 0).submitter == fed.members[1].address


def test_an_undisclosed_update_cannot_be_voted_on_and_is_never_accepted(fed):
    rounds = fed.deployment.rounds
    r = rounds.open_round(fed.members[0])
    rounds.commit_update(fed.members[3], UpdateDisclosure(r, cid("withheld"), 5))  # id 0, never disclosed
    commit_and_disclose(fed.deployment, [(fed.members[i], UpdateDisclosure(r, cid(f"shown {i}"), 5)) for i in (1, 2)])
    assert [u.update_id for u in rounds.updates(r)] == [1, 2] and rounds.round(r).update_count == 3
    to_phase(fed, r, Phase.COMMIT)
    bad = Ballot.of({0: (True, 1), 1: (True, 1)})
    rounds.commit_votes(fed.members[0], r, bad)
    good = {i: Ballot.of({u: (True, 40_000) for u in (1, 2) if u != i}) for i in (1, 2)}
    for i, b in good.items():
        rounds.commit_votes(fed.members[i], r, b)
    to_phase(fed, r, Phase.REVEAL)
    with pytest.raises(reverts.NotDisclosed):
        rounds.reveal_votes(fed.members[0], r, bad)
    for i, b in good.items():
        rounds.reveal_votes(fed.members[i], r, b)
    to_phase(fed, r, Phase.FINALIZABLE)
    assert rounds.finalize(fed.members[0], r).accepted_ids == (1, 2)


def test_committing_to_a_round_that_was_never_opened_reverts_UnknownRound(fed):
    with pytest.raises(reverts.UnknownRound):
        fed.deployment.rounds.commit_update(fed.members[0], UpdateDisclosure(99, cid("x"), 1))


def test_a_non_member_cannot_open_commit_disclose_or_vote(fed):
    outsider = fed.chain.new_account()
    with pytest.raises(reverts.NotActiveMember):
        fed.deployment.rounds.open_round(outsider)
    r, _ = open_with_updates(fed, submitters=())
    with pytest.raises(reverts.NotActiveMember):
        fed.deployment.rounds.submit_update(outsider, UpdateDisclosure(r, cid("x"), 1))


def test_an_empty_commitment_zero_samples_and_malformed_cids_are_refused(fed):
    rounds = fed.deployment.rounds
    r = rounds.open_round(fed.members[0])
    with pytest.raises(reverts.EmptyCommitment):
        fed.chain.transact(rounds.contract.functions.commitUpdate(r, b"\x00" * 32), fed.members[0])
    with pytest.raises(reverts.NotActiveMember):
        rounds.commit_update(fed.chain.new_account(), UpdateDisclosure(r, cid("x"), 1))
    zero, bad_cid = UpdateDisclosure(r, cid("x"), 0), UpdateDisclosure(r, cid("y"), 1)
    rounds.commit_update(fed.members[0], zero)
    rounds.commit_update(fed.members[1], bad_cid)
    to_phase(fed, r, Phase.DISCLOSE)
    with pytest.raises(reverts.ZeroSamples):
        rounds.submit_update(fed.members[0], zero)
    bad = bytearray(cid_to_bytes(bad_cid.cid))
    bad[2] = 0x13  # sha2-512 code with a 32-byte length: not a sha2-256 CID
    with pytest.raises(reverts.InvalidCid):
        fed.chain.transact(rounds.contract.functions.submitUpdate(r, bytes(bad), 1, b"", bad_cid.salt), fed.members[1])


def test_opening_a_round_while_the_previous_one_runs_reverts(fed):
    open_with_updates(fed, submitters=())
    with pytest.raises(reverts.PreviousRoundNotDone):
        fed.deployment.rounds.open_round(fed.members[1])


def test_a_reveal_that_does_not_match_the_commitment_reverts_RevealMismatch(fed):
    rounds = fed.deployment.rounds
    r, _ = open_with_updates(fed)
    to_phase(fed, r, Phase.COMMIT)
    ballot = Ballot.of({1: (True, 10), 2: (False, -5)})
    rounds.commit_votes(fed.members[0], r, ballot)
    to_phase(fed, r, Phase.REVEAL)
    changed = Ballot.of({1: (True, 10), 2: (True, -5)}, salt=ballot.salt)
    with pytest.raises(reverts.RevealMismatch):
        rounds.reveal_votes(fed.members[0], r, changed)
    rounds.reveal_votes(fed.members[0], r, ballot)
    with pytest.raises(reverts.AlreadyRevealed):
        rounds.reveal_votes(fed.members[0], r, ballot)


def test_voting_on_ones_own_update_reverts_SelfVote(fed):
    rounds = fed.deployment.rounds
    r, _ = open_with_updates(fed)
    to_phase(fed, r, Phase.COMMIT)
    ballot = Ballot.of({0: (True, 1), 1: (True, 1)})  # member 0 owns update 0
    rounds.commit_votes(fed.members[0], r, ballot)
    to_phase(fed, r, Phase.REVEAL)
    with pytest.raises(reverts.SelfVote):
        rounds.reveal_votes(fed.members[0], r, ballot)


def test_duplicate_and_unknown_update_ids_in_a_ballot_revert(fed):
    rounds = fed.deployment.rounds
    r, _ = open_with_updates(fed)
    to_phase(fed, r, Phase.COMMIT)
    dup = Ballot(update_ids=(1, 1), approve=(True, True), loss_delta=(1, 1))
    unknown = Ballot(update_ids=(7,), approve=(True,), loss_delta=(1,))
    rounds.commit_votes(fed.members[0], r, dup)
    rounds.commit_votes(fed.members[1], r, unknown)
    with pytest.raises(reverts.AlreadyCommitted):
        rounds.commit_votes(fed.members[1], r, unknown)
    to_phase(fed, r, Phase.REVEAL)
    with pytest.raises(reverts.DuplicateVote):
        rounds.reveal_votes(fed.members[0], r, dup)
    with pytest.raises(reverts.UnknownUpdate):
        rounds.reveal_votes(fed.members[1], r, unknown)


def test_revealing_without_a_commitment_reverts_NoCommitment(fed):
    r, _ = open_with_updates(fed)
    to_phase(fed, r, Phase.REVEAL)
    with pytest.raises(reverts.NoCommitment):
        fed.deployment.rounds.reveal_votes(fed.members[2], r, Ballot.of({0: (True, 1)}))


def test_finalizing_before_the_reveal_window_ends_reverts_WrongPhase(fed):
    r, _ = open_with_updates(fed)
    to_phase(fed, r, Phase.REVEAL)
    with pytest.raises(reverts.WrongPhase):
        fed.deployment.rounds.finalize(fed.members[0], r)


def test_confirming_a_different_cid_after_the_quorum_reverts_AggregateMismatch(fed):
    rounds = fed.deployment.rounds
    r, _ = open_with_updates(fed)
    vote_all(fed, r, lambda v, u: (True, 1_000))
    rounds.finalize(fed.members[0], r)
    rounds.confirm_aggregate(fed.members[0], r, cid("good"))
    rounds.confirm_aggregate(fed.members[1], r, cid("good"))
    with pytest.raises(reverts.AggregateMismatch):
        rounds.confirm_aggregate(fed.members[2], r, cid("forged"))
    rounds.confirm_aggregate(fed.members[3], r, cid("good"))  # late but matching: recorded
    with pytest.raises(reverts.AlreadyConfirmed):
        rounds.confirm_aggregate(fed.members[3], r, cid("good"))


def test_a_lone_liar_cannot_complete_a_round_with_a_different_cid(fed):
    rounds = fed.deployment.rounds
    r, _ = open_with_updates(fed)
    vote_all(fed, r, lambda v, u: (True, 1_000))
    rounds.finalize(fed.members[0], r)
    rounds.confirm_aggregate(fed.members[0], r, cid("forged"))
    rounds.confirm_aggregate(fed.members[1], r, cid("honest"))
    assert rounds.phase(r) is Phase.CONFIRM
    rounds.confirm_aggregate(fed.members[2], r, cid("honest"))
    assert rounds.round(r).global_cid == cid("honest")


def test_only_members_who_revealed_may_confirm(fed):
    rounds = fed.deployment.rounds
    r, _ = open_with_updates(fed)
    vote_all(fed, r, lambda v, u: (True, 1_000), voters=(0, 1, 2))
    rounds.finalize(fed.members[0], r)
    with pytest.raises(reverts.NotEligible):
        rounds.confirm_aggregate(fed.members[3], r, cid("agg"))


def test_a_round_whose_aggregate_is_never_confirmed_fails_and_keeps_its_base(fed):
    rounds = fed.deployment.rounds
    r, _ = open_with_updates(fed)
    vote_all(fed, r, lambda v, u: (True, 1_000))
    rounds.finalize(fed.members[0], r)
    rounds.confirm_aggregate(fed.members[0], r, cid("only one"))
    fed.chain.mine_to(rounds.round(r).confirm_end + 1)
    assert rounds.phase(r) is Phase.FAILED
    with pytest.raises(reverts.WrongPhase):
        rounds.confirm_aggregate(fed.members[1], r, cid("only one"))
    r2 = rounds.open_round(fed.members[1])
    assert rounds.round(r2).base_cid is None
    assert [e.args["round"] for e in rounds.events("RoundFailed")] == [r]


def test_claiming_twice_or_with_nothing_earned_reverts(fed):
    rounds = fed.deployment.rounds
    r, _ = open_with_updates(fed, submitters=(0,))
    vote_all(fed, r, lambda v, u: (True, 1_000), voters=(1, 2))
    with pytest.raises(reverts.WrongPhase):
        rounds.claim(fed.members[0], r)
    rounds.finalize(fed.members[1], r)
    rounds.claim(fed.members[0], r)
    with pytest.raises(reverts.AlreadyClaimed):
        rounds.claim(fed.members[0], r)
    with pytest.raises(reverts.NothingToClaim):
        rounds.claim(fed.members[3], r)


# ------------------------------------------------------------------ acceptance and rewards


def test_an_update_is_accepted_when_approvals_exceed_rejections_and_reach_the_quorum(fed):
    rounds = fed.deployment.rounds
    r, _ = open_with_updates(fed)
    # update 0: all three others approve; update 1: 1 approve, 2 reject; update 2: 2 approve, 1 reject;
    # update 3: nobody votes on it
    table = {0: (True, True, True), 1: (True, False, False), 2: (True, True, False)}

    def votes(voter, update):
        others = [m for m in range(4) if m != update]
        if update == 3:
            return (False, 0) if voter == 0 else (False, 0)
        return (table[update][others.index(voter)], 20_000)

    vote_all(fed, r, votes)
    result = rounds.finalize(fed.members[0], r)
    assert result.accepted_ids == (0, 2)
    decided = {e.args["updateId"]: e.args for e in rounds.events("UpdateDecided", round=r)}
    assert decided[1]["approvals"] == 1 and decided[1]["rejections"] == 2 and not decided[1]["accepted"]
    assert not decided[3]["accepted"]


def test_an_unvoted_round_completes_on_its_base_without_confirmations(fed):
    rounds = fed.deployment.rounds
    r, _ = open_with_updates(fed, submitters=(0,))
    to_phase(fed, r, Phase.FINALIZABLE)
    result = rounds.finalize(fed.members[1], r)
    assert result.accepted_ids == () and result.requested == 0
    assert rounds.phase(r) is Phase.COMPLETED


def test_rewards_follow_the_clamped_mean_of_approvers_loss_delta_and_matching_votes(fed):
    rounds, p = fed.deployment.rounds, fed.deployment.params
    r, _ = open_with_updates(fed)
    # each approver reports 60% of the bound; one liar on update 0 reports 100x the bound
    liar = 1

    def votes(voter, update):
        return (True, p.reward_bound * 100 if (voter == liar and update == 0) else p.reward_bound * 6 // 10)

    vote_all(fed, r, votes)
    rounds.finalize(fed.members[0], r)
    u0 = rounds.update(r, 0)
    score = u0.approved_delta_sum // u0.approvals
    # the liar's report is clamped to the bound: the mean moves by at most bound / approvers
    assert score == (p.reward_bound + 2 * (p.reward_bound * 6 // 10)) // 3
    expected = p.submit_reward * score // p.reward_bound + 3 * p.voter_reward
    assert rounds.entitlement(r, fed.members[0].address) == expected
    before = fed.deployment.token.balance_of(fed.members[0].address)
    claimed = rounds.claim(fed.members[0], r)
    assert claimed.minted == expected
    assert fed.deployment.token.balance_of(fed.members[0].address) - before == expected


def test_negative_loss_delta_counts_as_zero_improvement(fed):
    rounds, p = fed.deployment.rounds, fed.deployment.params
    r, _ = open_with_updates(fed, submitters=(0,))
    vote_all(fed, r, lambda v, u: (True, -(10**9)), voters=(1, 2, 3))
    rounds.finalize(fed.members[1], r)
    assert rounds.update(r, 0).approved_delta_sum == 0
    assert rounds.entitlement(r, fed.members[0].address) == 0
    assert rounds.entitlement(r, fed.members[1].address) == p.voter_reward


def test_only_votes_that_match_the_outcome_earn_the_voter_reward(fed):
    rounds, p = fed.deployment.rounds, fed.deployment.params
    r, _ = open_with_updates(fed, submitters=(0, 1))
    vote_all(fed, r, lambda v, u: (v != 3, 10_000), voters=(1, 2, 3))  # member 3 rejects everything
    rounds.finalize(fed.members[1], r)
    # update 0: approved by 1 and 2, rejected by 3 -> accepted; update 1: 2 approves, 3 rejects -> tie, rejected
    assert rounds.round(r).accepted_ids == (0,)
    assert rounds.entitlement(r, fed.members[3].address) == p.voter_reward  # its rejection of update 1 matched
    assert rounds.entitlement(r, fed.members[2].address) == p.voter_reward  # its approval of update 0 matched
    assert rounds.entitlement(r, fed.members[1].address) == p.voter_reward


def test_round_info_reads_the_phase_before_the_state_so_the_state_is_never_older(fed, monkeypatch):
    # a finalize landing between two reads must not give phase CONFIRM with no accepted update
    rounds = fed.deployment.rounds
    r, _ = open_with_updates(fed)
    order: list[str] = []
    real_phase, real_read = rounds.phase, rounds._read
    monkeypatch.setattr(rounds, "phase", lambda *a: order.append("phase") or real_phase(*a))
    monkeypatch.setattr(rounds, "_read", lambda fn, *a: order.append(fn) or real_read(fn, *a))
    rounds.round(r)
    assert order == ["phase", "getRound"]
