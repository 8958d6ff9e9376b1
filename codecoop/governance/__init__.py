"""DAO governance: proposal builders for every governed action, and the version-control protocol
(release criteria, contribution shares, model cards, loading a released model)."""

from codecoop.governance.proposals import MEMBER_ACTIONS, PARAMETERS, Proposal, describe_call, member_action, release, set_parameter
from codecoop.governance.versions import (
    Contribution,
    CriteriaNotMet,
    ReleaseCriteria,
    Verification,
    contributions,
    load_adapter,
    metrics_document,
    model_card,
    rounds_of_version,
    verify_release,
)

__all__ = [
    "MEMBER_ACTIONS",
    "PARAMETERS",
    "Contribution",
    "CriteriaNotMet",
    "Proposal",
    "ReleaseCriteria",
    "Verification",
    "contributions",
    "describe_call",
    "load_adapter",
    "member_action",
    "metrics_document",
    "model_card",
    "release",
    "rounds_of_version",
    "set_parameter",
    "verify_release",
]
