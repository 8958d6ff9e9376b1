"""Contribution rewards: the contracts' reward arithmetic mirrored off-chain, and the ledger rebuilt
from chain events (who contributed what, who holds which voting power).

Importing this package is cheap; web3 loads when a ledger is rebuilt.
"""

from codecoop.token.rewards import (
    BPS,
    Decision,
    RewardRules,
    RoundOutcome,
    Vote,
    cap_to_member,
    claim_amount,
    clamp_delta,
    decide_round,
    reserve,
    submitter_reward,
)

__all__ = [
    "BPS",
    "Decision",
    "RewardRules",
    "RoundOutcome",
    "Vote",
    "cap_to_member",
    "claim_amount",
    "clamp_delta",
    "decide_round",
    "reserve",
    "submitter_reward",
]
