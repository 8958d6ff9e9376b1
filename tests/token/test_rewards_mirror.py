"""``codecoop.token`` computes exactly what the contracts compute: decisions, scores, entitlements,
the round's reservation and every claim under both caps, for many vote patterns and quorums."""

from __future__ import annotations

import random

import pytest

from codecoop.chain.devtools import DevFederation
from codecoop.chain.params import TOKEN_UNIT, FederationParams
from codecoop.token import RewardRules, Vote, cap_to_member, claim_amount, decide_round, reserve
from codecoop.token.ledger import Ledger

BOUND = 100_000


def _params(quorum_bps: int, epoch_cap: int, member_cap: int) -> FederationParams:
    return FederationParams(
        submit_window=14, commit_window=12, reveal_window=12, confirm_window=14, epoch_length=100_000,
        quorum_bps=quorum_bps, reward_bound=BOUND, epoch_cap=epoch_cap, member_epoch_cap=member_cap, welcome_grant=0,
    )  # fmt: skip


@pytest.fixture(scope="module", params=[5_000, 7_500])
def fed(request) -> DevFederation:
    # caps low enough that later rounds are cut by the epoch cap and some claims by the member cap
    return DevFederation.create(5, _params(request.param, epoch_cap=1_500 * TOKEN_UNIT, member_cap=260 * TOKEN_UNIT))


PATTERNS = {
    "all approve, deltas below, inside and above the bound": lambda v, u: (True, [-5_000, 30_000, 250_000, 77_777, 1][(v + u) % 5]),
    "split votes: ties and narrow majorities": lambda v, u: ((v + u) % 2 == 0, 40_000 + v * 1_000),
    "mostly reject": lambda v, u: (v == u + 1, 60_000),
    "approve with losses": lambda v, u: (v != 0, -1_000 * (v + 1)),
}


def _random_pattern(seed: int):
    rng = random.Random(seed)
    table = {(v, u): (rng.random() < 0.6, rng.randrange(-50_000, 150_000)) for v in range(5) for u in range(5)}
    return lambda v, u: table[(v, u)]


@pytest.mark.parametrize(
    "vote, submitters, voters",
    [(p, None, None) for p in PATTERNS.values()]
    + [(_random_pattern(s), None, None) for s in range(3)]
    + [(_random_pattern(10), [0, 1, 2], [1, 2, 3, 4])],  # a submitter who does not reveal still counts
    ids=list(PATTERNS) + [f"random {s}" for s in range(3)] + ["submitter 0 does not vote"],
)
def test_the_mirror_equals_the_chain_for_decisions_entitlements_reservations_and_claims(fed, vote, submitters, voters):
    d, token = fed.deployment, fed.deployment.token
    n = len(fed.members)
    epoch = token.current_epoch()
    reserved_before = token.reserved_in(epoch)
    minted_before = {m.address: token.member_minted(epoch, m.address) for m in fed.members}
    record = fed.run_round(vote=vote, submitters=submitters, voters=voters, claim=False)
    r = d.rounds.round(record.round)
    p = d.rounds.params()
    rules = RewardRules(p.quorum_bps, p.reward_bound, p.submit_reward, p.voter_reward)
    owner = {u: i for i, u in record.update_ids.items()}
    submitter_of = [fed.members[owner[u]].address for u in range(len(owner))]
    ballots = {
        fed.members[v].address: tuple(Vote(u, *vote(v, u)) for u in sorted(owner) if owner[u] != v)
        for v in (range(n) if voters is None else voters)
    }
    outcome = decide_round(rules, submitter_of, ballots)

    decided = Ledger.from_deployment(d).rounds[record.round].decisions  # the UpdateDecided events
    assert [(e.accepted, e.approvals, e.rejections, e.score) for e in decided] == [
        (x.accepted, x.approvals, x.rejections, x.score) for x in outcome.decisions
    ]
    assert r.accepted_ids == outcome.accepted_ids and r.requested == outcome.requested
    for m in fed.members:
        assert d.rounds.entitlement(record.round, m.address) == outcome.entitlements.get(m.address, 0)
    epoch_cap, member_cap = token.caps()
    assert r.granted == reserve(epoch_cap, reserved_before, outcome.requested)
    for m in fed.members:
        owed = outcome.entitlements.get(m.address, 0)
        if owed:
            expected = cap_to_member(claim_amount(owed, r.requested, r.granted), minted_before[m.address], member_cap)
            assert d.rounds.claim(m, record.round).minted == expected


def test_a_cut_round_shares_its_reservation_pro_rata_rounding_down():
    assert claim_amount(owed=10, requested=30, granted=20) == 6  # 10 * 20 / 30 = 6.67
    assert claim_amount(owed=10, requested=30, granted=30) == 10
    assert reserve(epoch_cap=100, reserved=90, requested=30) == 10
    assert reserve(epoch_cap=100, reserved=120, requested=30) == 0
    assert cap_to_member(50, already=40, member_cap=60) == 20


def test_a_score_is_the_floor_of_the_mean_clamped_delta_of_the_approvers():
    rules = RewardRules(quorum_bps=5_000, reward_bound=100, submit_reward=1_000, voter_reward=0)
    ballots = {"a": (Vote(0, True, 150),), "b": (Vote(0, True, -20),), "c": (Vote(0, True, 51),)}
    (decision,) = decide_round(rules, ["s"], ballots).decisions
    assert decision.score == (100 + 0 + 51) // 3 == 50
    assert decide_round(rules, ["s"], ballots).entitlements == {"s": 500}


def test_the_quorum_counts_revealed_voters_without_the_submitter():
    rules = RewardRules(quorum_bps=7_500, reward_bound=100, submit_reward=100, voter_reward=1)
    # three eligible voters besides the submitter (who revealed an empty ballot): 2 of 3 approvals miss 75%
    ballots = {"s": (), "a": (Vote(0, True, 10),), "b": (Vote(0, True, 10),), "c": ()}
    assert decide_round(rules, ["s"], ballots).accepted_ids == ()
    ballots["c"] = (Vote(0, True, 10),)
    assert decide_round(rules, ["s"], ballots).accepted_ids == (0,)
