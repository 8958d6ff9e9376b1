"""Voting on a release proposal with the memorization audit: a member can refuse to approve a model
that reproduces its private code.

A member whose node configuration sets ``[audit] vote_against_failing_releases = true`` has
``codecoop dao vote`` run :func:`audit_release_proposal` on its own code before casting a vote on a
release: the proposed adapter is fetched (CID verified), attached to the base model the proposal
names, and audited (:func:`codecoop.audit.memorization.audit_memorization`). :func:`decide_vote`
then turns the outcome into the vote: ``auto`` votes for a passing and against a failing release; an
explicit ``for`` on a failing release is refused, so nobody approves a leaking model by mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codecoop.audit.memorization import MemorizationConfig, MemorizationReport, audit_memorization
from codecoop.errors import CodecoopError, ConfigError

if TYPE_CHECKING:
    from codecoop.chain import Deployment
    from codecoop.storage import ContentStore

__all__ = ["MemorizationGateFailed", "ReleaseCall", "release_call", "audit_release_proposal", "decide_vote"]


class MemorizationGateFailed(CodecoopError):
    """A vote for a release was refused: the model fails the member's memorization audit."""


@dataclass(frozen=True)
class ReleaseCall:
    """The ``ModelRegistry.release`` call a proposal would execute."""

    tag: str
    cid: str
    parent: int
    base_model_id: str


def release_call(d: Deployment, proposal_id: int) -> ReleaseCall | None:
    """The release a proposal makes, or None when it releases no model (a parameter change, say).

    Raises
    ------
    ConfigError
        No proposal with this id exists on the deployment.
    """
    from codecoop.chain.cid import cid_from_bytes
    from codecoop.governance import describe_call
    from codecoop.token.ledger import Ledger

    p = Ledger.from_deployment(d).proposals.get(proposal_id)
    if p is None:
        raise ConfigError(f"no proposal {proposal_id} on this deployment; `codecoop dao list` shows them")
    for target, data in zip(p.targets, p.calldatas):
        _, fn, args = describe_call(d, target, data)
        if fn == "release":
            return ReleaseCall(args["tag"], cid_from_bytes(args["cid"]), int(args["parent"]), args["baseModelId"])
    return None


def audit_release_proposal(
    d: Deployment,
    proposal_id: int,
    store: ContentStore,
    data: Sequence[Path],
    config: MemorizationConfig,
    *,
    base: Any = None,
) -> tuple[ReleaseCall, MemorizationReport] | None:
    """Run the memorization audit of a release proposal's model on ``data``; None for a non-release proposal.

    ``base`` reuses an already loaded base model (it must be the one the proposal names).
    """
    from codecoop.governance import load_adapter
    from codecoop.token.ledger import Ledger
    from codecoop.training import load_base

    call = release_call(d, proposal_id)
    if call is None:
        return None
    base = base if base is not None else load_base(call.base_model_id)
    adapter = load_adapter(store, Ledger.from_deployment(d), call.cid, base)
    return call, audit_memorization(base, adapter, list(data), config)


def decide_vote(requested: str, report: MemorizationReport | None, *, proposal: str = "") -> tuple[str, str]:
    """The support to cast and a reason for it, given the member's request and the audit outcome.

    Parameters
    ----------
    requested:
        ``for``, ``against``, ``abstain`` or ``auto`` (for when the audit passes, against when it fails).
    report:
        The audit of the proposal's model; None when the proposal releases no model (no audit applies).

    Raises
    ------
    MemorizationGateFailed
        ``for`` was requested and the model fails the audit.
    ConfigError
        ``auto`` was requested for a proposal that releases no model.
    """
    if report is None:
        if requested == "auto":
            raise ConfigError(
                f"proposal {proposal} releases no model, so there is no audit to decide the vote; say for, against or abstain"
            )
        return requested, ""
    verdict = f"memorization audit: {report.memorized_lines}/{report.generated_lines} generated lines ({report.ratio:.2%}) copy the voter's code, threshold {report.threshold:.2%}"
    if report.passed:
        return ("for" if requested == "auto" else requested), f"{verdict}: passed"
    if requested == "for":
        raise MemorizationGateFailed(
            f"release proposal {proposal} fails your {verdict}; vote against or abstain, or set "
            "[audit] vote_against_failing_releases = false to vote for it anyway"
        )
    return ("against" if requested == "auto" else requested), f"{verdict}: failed"
