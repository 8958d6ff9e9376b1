"""The reward arithmetic of ``RoundManager`` and ``ContributionToken``, mirrored off-chain.

Every function here computes, with the same integer operations and the same rounding, what the
contracts compute (see the header NatSpec of ``contracts/RoundManager.sol``), so that a node can
predict its reward and an auditor can check every mint from the revealed votes alone:

- an update is accepted iff ``approvals > rejections`` and ``approvals * 10000 >= quorumBps * eligible``,
  where ``eligible`` is the number of revealed voters, less its submitter if the submitter revealed;
- its score is ``floor(sum(clamp(lossDelta, 0, rewardBound) for approvers) / approvals)``;
- its submitter is owed ``floor(submitReward * score / rewardBound)``;
- each revealed vote that matches the outcome earns ``voterReward``;
- the round requests the sum, the token reserves what is left of the epoch cap (``granted``);
- a claim gets ``floor(owed * granted / requested)`` when the round was cut, else ``owed``, and the
  token cuts that to what is left of the member's cap for the epoch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "BPS",
    "RewardRules",
    "Vote",
    "Decision",
    "RoundOutcome",
    "clamp_delta",
    "submitter_reward",
    "decide_round",
    "reserve",
    "claim_amount",
    "cap_to_member",
]

#: Basis points in one (the quorum's unit).
BPS = 10_000


@dataclass(frozen=True)
class RewardRules:
    """The parameters a round fixes when it opens (``RoundManager.Params``, reward part)."""

    quorum_bps: int
    reward_bound: int
    submit_reward: int
    voter_reward: int


@dataclass(frozen=True)
class Vote:
    """One revealed vote: approve or reject, and the loss improvement the voter measured (micro-nats)."""

    update_id: int
    approve: bool
    loss_delta: int


@dataclass(frozen=True)
class Decision:
    """What ``finalize`` decides for one update (the ``UpdateDecided`` event)."""

    update_id: int
    accepted: bool
    approvals: int
    rejections: int
    score: int


@dataclass(frozen=True)
class RoundOutcome:
    """Decisions, the round's requested total and what each member is owed before the caps."""

    decisions: tuple[Decision, ...]
    requested: int
    entitlements: Mapping[str, int]

    @property
    def accepted_ids(self) -> tuple[int, ...]:
        return tuple(d.update_id for d in self.decisions if d.accepted)

    @property
    def accepted_mask(self) -> int:
        return sum(1 << i for i in self.accepted_ids)


def clamp_delta(loss_delta: int, bound: int) -> int:
    """A vote's lossDelta as it enters an update's score: clamped to ``[0, bound]``."""
    return min(max(loss_delta, 0), bound)


def submitter_reward(rules: RewardRules, score: int) -> int:
    """What an accepted update with ``score`` earns its submitter."""
    return rules.submit_reward * score // rules.reward_bound


def decide_round(rules: RewardRules, submitters: Sequence[str], ballots: Mapping[str, Sequence[Vote]]) -> RoundOutcome:
    """Decide every update of a round and compute the members' entitlements, as ``finalize`` does.

    Parameters
    ----------
    submitters:
        The submitter of each update, indexed by update id.
    ballots:
        Every member who revealed, with its revealed votes (an empty ballot still counts as revealed).
    """
    approvals = [0] * len(submitters)
    rejections = [0] * len(submitters)
    delta_sums = [0] * len(submitters)
    for votes in ballots.values():
        for v in votes:
            if v.approve:
                approvals[v.update_id] += 1
                delta_sums[v.update_id] += clamp_delta(v.loss_delta, rules.reward_bound)
            else:
                rejections[v.update_id] += 1
    revealed = len(ballots)
    decisions = []
    entitlements: dict[str, int] = {}
    submit_total = honest_votes = 0
    for uid, submitter in enumerate(submitters):
        eligible = revealed - (1 if submitter in ballots else 0)
        accepted = approvals[uid] > rejections[uid] and approvals[uid] * BPS >= rules.quorum_bps * eligible
        score = delta_sums[uid] // approvals[uid] if accepted else 0
        if accepted:
            reward = submitter_reward(rules, score)
            submit_total += reward
            honest_votes += approvals[uid]
            if reward:
                entitlements[submitter] = entitlements.get(submitter, 0) + reward
        else:
            honest_votes += rejections[uid]
        decisions.append(Decision(uid, accepted, approvals[uid], rejections[uid], score))
    if rules.voter_reward:
        for voter, votes in ballots.items():
            matching = sum(1 for v in votes if v.approve == decisions[v.update_id].accepted)
            if matching:
                entitlements[voter] = entitlements.get(voter, 0) + matching * rules.voter_reward
    requested = submit_total + honest_votes * rules.voter_reward
    return RoundOutcome(tuple(decisions), requested, entitlements)


def reserve(epoch_cap: int, reserved: int, requested: int) -> int:
    """What ``ContributionToken.reserve`` grants: ``requested`` cut to what is left of the epoch cap."""
    return min(requested, max(epoch_cap - reserved, 0))


def claim_amount(owed: int, requested: int, granted: int) -> int:
    """What a claim asks the token to mint: the member's share of a cut reservation, rounded down."""
    return owed * granted // requested if granted < requested else owed


def cap_to_member(amount: int, already: int, member_cap: int) -> int:
    """What the token mints of ``amount`` to a member who already received ``already`` this epoch."""
    return min(amount, max(member_cap - already, 0))
