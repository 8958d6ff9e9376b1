"""A token whose mint bypasses the caps, deployed in place of ContributionToken: the audit flags it."""

from __future__ import annotations

import pytest

from codecoop.audit.run import audit_deployment
from codecoop.chain.params import TOKEN_UNIT

from .conftest import PARAMS
from .modified_token import federation_with_uncapped_token


@pytest.fixture(scope="module")
def fed():
    with pytest.MonkeyPatch.context() as mp:
        fed = federation_with_uncapped_token(mp, 4, PARAMS)
    fed.run_round()
    return fed


@pytest.fixture
def rolled_back(fed):
    snapshot = fed.chain.snapshot()
    yield fed
    fed.chain.revert_to(snapshot)


def test_the_modified_token_runs_rounds_and_audits_clean_until_the_backdoor_is_used(rolled_back):
    assert audit_deployment(rolled_back.deployment).clean


def test_a_mint_past_the_member_cap_dressed_as_a_round_claim_is_found(rolled_back):
    fed = rolled_back
    member = fed.members[0]
    fed.chain.transact(fed.deployment.token.contract.functions.bonus(member.address, 5_000 * TOKEN_UNIT, 1), fed.members[3])
    report = audit_deployment(fed.deployment)
    assert {"member-cap", "double-claim", "epoch-cap"} <= report.kinds()
    assert member.address in {f.member for f in report.findings if f.kind == "member-cap"}


def test_a_mint_without_an_issuance_event_is_found(rolled_back):
    fed = rolled_back
    fed.chain.transact(fed.deployment.token.contract.functions.silentMint(fed.members[1].address, TOKEN_UNIT), fed.members[3])
    report = audit_deployment(fed.deployment)
    assert report.kinds() == {"untied-mint", "supply"}
