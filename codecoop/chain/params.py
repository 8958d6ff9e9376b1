"""Federation parameters: everything fixed at deployment, later changed only by governance."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from codecoop.chain.units import TOKEN_UNIT
from codecoop.errors import ConfigError

__all__ = ["FederationParams", "TOKEN_UNIT"]


@dataclass(frozen=True)
class FederationParams:
    """Deployment parameters of a federation's contracts.

    Windows are in blocks. Token amounts are in token units (18 decimals). ``reward_bound`` and the
    votes' ``lossDelta`` are in micro-nats of validation loss.
    """

    # ContributionToken
    token_name: str = "codecoop Contribution"
    token_symbol: str = "COOP"
    epoch_length: int = 1_000
    epoch_cap: int = 10_000 * TOKEN_UNIT
    member_epoch_cap: int = 2_000 * TOKEN_UNIT
    welcome_grant: int = 10 * TOKEN_UNIT
    # MemberRegistry
    admission: str = "open"  # "open" or "approval"
    # RoundManager
    submit_window: int = 30
    disclose_window: int = 20
    commit_window: int = 20
    reveal_window: int = 20
    confirm_window: int = 30
    quorum_bps: int = 5_000
    confirmations: int = 2
    max_updates: int = 112
    reward_bound: int = 100_000
    submit_reward: int = 100 * TOKEN_UNIT
    voter_reward: int = 5 * TOKEN_UNIT
    aggregation_strategy: str = "fedavg"
    # ModelRegistry and the charter
    charter_cid: str = ""
    base_model_id: str = "tiny"
    base_weights_hash: str = "0x" + "00" * 32
    min_improvement_bps: int = 100
    # CoopGovernor and CoopTimelock
    voting_delay: int = 1
    voting_period: int = 50
    proposal_threshold: int = 0
    quorum_percent: int = 4
    vote_extension: int = 10
    timelock_delay: int = 1  # seconds

    def __post_init__(self) -> None:
        if self.admission not in ("open", "approval"):
            raise ConfigError(f"admission must be 'open' or 'approval', not {self.admission!r}")
        for name in (
            "epoch_length",
            "submit_window",
            "disclose_window",
            "commit_window",
            "reveal_window",
            "confirm_window",
            "confirmations",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if not 1 <= self.quorum_bps <= 10_000:
            raise ConfigError("quorum_bps must be between 1 and 10000")
        if not 1 <= self.max_updates <= 112:
            raise ConfigError("max_updates must be between 1 and 112")
        if not 1 <= self.reward_bound <= 2**40:
            raise ConfigError("reward_bound must be between 1 and 2**40 micro-nats")
        if not 0 <= self.quorum_percent <= 100:
            raise ConfigError("quorum_percent must be between 0 and 100")
        weights = self.base_weights_hash.removeprefix("0x")
        if len(weights) != 64 or any(c not in "0123456789abcdefABCDEF" for c in weights):
            raise ConfigError("base_weights_hash must be 32 bytes of hex (the sha256 of the base model's weights)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FederationParams:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown federation parameters: {sorted(unknown)}")
        return cls(**data)
