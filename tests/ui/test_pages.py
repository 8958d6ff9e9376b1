"""Every dashboard page over a recorded federation, through the application (no browser): what each
shows, that hostile strings come out escaped, and that forms refuse requests without the CSRF token."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from codecoop.ui.app import CSP, create_app
from codecoop.ui.dashboard import Dashboard

from .conftest import XSS


@pytest.fixture
def client(recorded):
    db = Dashboard(recorded.fed.deployment, store=recorded.store, signer=recorded.fed.members[0])
    db.catch_up()
    with TestClient(create_app(db), base_url="http://127.0.0.1") as c:
        c.db = db
        yield c


PAGES = ["/", "/rounds", "/rounds/1", "/rounds/2", "/members", "/proposals", "/models", "/audit", "/node"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_with_the_security_headers(client, path):
    r = client.get(path)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-security-policy"] == CSP and "'unsafe-inline'" not in CSP
    assert r.headers["x-frame-options"] == "DENY"
    assert "<script>" not in r.text  # every script is an external file, so the policy can forbid inline ones


def test_hostile_strings_from_the_chain_are_escaped_on_every_page(client, recorded):
    pages = [*PAGES, f"/proposals/{recorded.xss_proposal}"]
    for path in pages:
        text = client.get(path).text
        for payload in XSS:
            if payload.startswith("javascript:"):  # harmless as text; never as a link or a source
                assert not re.search(r'(href|src|action)="\s*javascript:', text), path
            else:
                assert payload not in text, (path, payload)
    detail = client.get(f"/proposals/{recorded.xss_proposal}").text
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in detail  # shown, as text
    assert "&lt;svg onload" in client.get("/members").text


def test_the_overview_shows_the_charter_round_versions_and_issuance(client, recorded):
    text = client.get("/").text
    d = recorded.fed.deployment
    assert d.models.charter().base_model_id in text
    assert "approval quorum" in text and "75.0% of the members who revealed" in text
    rounds = recorded.fed.deployment.rounds
    for r in (1, 2, 3):
        assert rounds.round(r).global_cid in text
    assert 'id="loss-chart"' in text and 'id="issuance-chart-data"' in text


def test_a_round_page_shows_updates_votes_decisions_and_rewards(client, recorded):
    rounds = recorded.fed.deployment.rounds
    text = client.get("/rounds/2").text
    for u in rounds.updates(2):
        assert u.cid in text
    info = rounds.round(2)
    assert len(info.accepted_ids) < info.update_count, "the harmful update was rejected"
    assert text.count('class="rejected"') == info.update_count - len(info.accepted_ids)
    assert "Ballots (revealed)" in text and "Rewards minted" in text


def test_proposals_are_described_in_words_with_their_state(client, recorded):
    text = client.get("/proposals").text
    assert "set quorum to 75%" in text and "executed" in text
    assert re.search(r"release v1 = bafk\w+, parent the base model", text)
    assert client.get(f"/proposals/{recorded.passed_proposal}").status_code == 200
    assert client.get("/proposals/12345").status_code == 404


def test_models_show_the_release_with_its_contributions_and_pull_command(client):
    text = client.get("/models").text
    assert "v1" in text and "codecoop model pull v1" in text and "Model card" in text


def test_a_post_without_the_csrf_token_or_from_another_site_is_refused(client, recorded):
    pid = recorded.xss_proposal
    assert client.post(f"/proposals/{pid}/vote", data={"support": "for"}, follow_redirects=False).status_code == 403
    forged = client.post(
        f"/proposals/{pid}/vote", data={"support": "for", "csrf": client.db.csrf}, headers={"origin": "http://evil.example"},
        follow_redirects=False,
    )  # fmt: skip
    assert forged.status_code == 403
    assert not recorded.fed.deployment.governor.contract.functions.hasVoted(pid, recorded.fed.members[0].address).call()


def test_another_host_name_is_refused(client):
    assert client.get("/", headers={"host": "attacker.example"}).status_code == 400


def test_a_vote_through_the_form_reaches_the_chain_and_the_page_says_so(client, recorded):
    d, pid = recorded.fed.deployment, recorded.xss_proposal
    snapshot = recorded.fed.chain.snapshot()
    try:
        r = client.post(f"/proposals/{pid}/vote", data={"support": "against", "reason": "no", "csrf": client.db.csrf})
        assert r.status_code == 200 and "voted against on proposal" in r.text
        assert d.governor.contract.functions.hasVoted(pid, recorded.fed.members[0].address).call()
        again = client.post(f"/proposals/{pid}/vote", data={"support": "for", "csrf": client.db.csrf})
        assert "banner error" in again.text  # the governor refuses a second vote; the page says why
    finally:
        recorded.fed.chain.revert_to(snapshot)


class _NodeConfig:
    """The two things 'My node' reads of a node configuration: its folder and its DP delta."""

    def __init__(self, folder):
        self.folder = folder

    def __getitem__(self, key):
        assert key == "training.dp_delta"
        return 1e-5


def test_my_node_shows_the_journal_votes_reasons_claims_and_privacy(recorded, tmp_path):
    from codecoop.node.journal import Journal

    fed = recorded.fed
    me = fed.members[0].address
    journal = Journal(tmp_path / "journal.json", deployment=fed.deployment.addresses["RoundManager"])
    trained = fed.deployment.rounds.round(1).global_cid
    e1 = journal.entry(1)
    e1.trained_cid, e1.samples, e1.improvement_micro, e1.done = trained, 321, 12_345, True
    e1.dp = {"noise_multiplier": 1.1, "delta": 1e-5}
    e1.votes = {"2": {"approve": False, "delta": -9, "reason": XSS[0], "submitter": fed.members[1].address}}
    journal.entry(2).skipped = True
    journal.save()
    db = Dashboard(fed.deployment, store=recorded.store, config=_NodeConfig(tmp_path), node_address=me)
    db.catch_up()
    with TestClient(create_app(db), base_url="http://127.0.0.1") as c:
        text = c.get("/node").text
    assert str(tmp_path / "journal.json") in text
    assert trained in text and "321 samples" in text and "DP noise 1.1" in text
    assert "skipped (selective update)" in text
    assert "#2 reject" in text and "&lt;script&gt;" in text and XSS[0] not in text  # a reason is shown as text
    assert re.search(r"epsilon \d+\.\d\d at delta 1e-05 over 1 released update", text)
    claimed = sum(m.minted for m in db.ledger.mints if m.member == me and m.round_id() == 1)
    assert claimed > 0 and "no round in the journal" not in text


def test_each_members_delegate_comes_from_the_ledger_and_agrees_with_the_chain(client, recorded):
    from codecoop.ui.views import ZERO_ADDRESS

    d, ledger = recorded.fed.deployment, client.db.ledger
    for address in ledger.members:
        on_chain = d.token.delegates(address)
        assert ledger.delegates.get(address, ZERO_ADDRESS) == on_chain
    assert '<span class="muted">none</span>' in client.get("/members").text  # the joined account never delegated


def test_a_parameter_change_shows_on_the_next_request_though_chain_reads_are_kept_between_events():
    from codecoop.chain.devtools import DevFederation
    from codecoop.governance import set_parameter

    from .conftest import PARAMS

    fed = DevFederation.create(3, PARAMS)
    db = Dashboard(fed.deployment)
    db.catch_up()
    with TestClient(create_app(db), base_url="http://127.0.0.1") as c:
        before = c.get("/").text
        fed.chain.mine(3)  # blocks without events: the kept parameters are served
        assert c.get("/").status_code == 200
        change = set_parameter(fed.deployment, [("quorum", "8000")], "Raise the quorum to 80%")
        fed.pass_proposal(list(change.calls), change.description)
        after = c.get("/").text
    assert "80.0% of the members who revealed" not in before and "80.0% of the members who revealed" in after


def test_a_wallet_request_is_dry_run_as_the_wallet_and_a_different_transaction_is_not_recorded(recorded):
    from codecoop.governance import set_parameter

    fed, d = recorded.fed, recorded.fed.deployment
    snapshot = fed.chain.snapshot()
    try:
        change = set_parameter(d, [("confirmations", "2")], "Two confirmations")
        pid = d.governor.propose(fed.members[0], list(change.calls), change.description)
        fed.chain.mine(d.params.voting_delay + 1)
        db = Dashboard(d, store=recorded.store)  # read-only: only a wallet can sign
        db.catch_up()
        with TestClient(create_app(db), base_url="http://127.0.0.1") as c:
            form = {"csrf": db.csrf, "support": "for", "reason": "ok", "wallet": fed.members[2].address}
            assert c.post(f"/proposals/{pid}/vote", data={**form, "csrf": "wrong"}).status_code == 403
            bad = c.post(f"/proposals/{pid}/vote", data={**form, "wallet": "0x1234"}).json()
            assert not bad["ok"] and "not an account address" in bad["error"]
            prepared = c.post(f"/proposals/{pid}/vote", data=form).json()
            assert prepared["ok"], prepared
            tx = prepared["tx"]
            assert tx["to"] == d.addresses["CoopGovernor"] and int(tx["chainId"], 16) == fed.chain.chain_id
            assert tx["data"] == "0x" + d.governor.vote_fn(pid, 1, "ok")._encode_transaction_data()[2:]
            # queueing a proposal still being voted on reverts: the dry run says so, before any wallet prompt
            refused = c.post(f"/proposals/{pid}/queue", data={"csrf": db.csrf, "wallet": fed.members[2].address}).json()
            assert not refused["ok"] and "GovernorUnexpectedProposalState" in refused["error"], refused
            # the wallet sends something else than what was prepared: nothing is reported as done
            other = d.token.delegate(fed.members[2]).tx_hash
            other = other if other.startswith("0x") else "0x" + other
            answer = c.post("/wallet/sent", data={"csrf": db.csrf, "token": prepared["token"], "hash": other}).json()
            assert not answer["ok"] and "different transaction" in answer["error"]
            again = c.post("/wallet/sent", data={"csrf": db.csrf, "token": prepared["token"], "hash": other}).json()
            assert not again["ok"] and "unknown or used request" in again["error"]  # one use per prepared request
    finally:
        fed.chain.revert_to(snapshot)
