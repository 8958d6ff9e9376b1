"""The ledger audit: an honest history is clean; each kind of broken history gives its finding."""

from __future__ import annotations

import shutil

from codecoop.audit.run import audit_deployment
from codecoop.storage import LocalStore


def test_an_honest_history_audits_clean_with_every_check_run(history):
    report = audit_deployment(history.fed.deployment, store=history.store)
    assert report.findings == []
    assert {c.name: c.status for c in report.checks} == dict.fromkeys(
        ["rounds", "mints", "caps", "supply", "storage", "aggregates", "voters", "governance", "concentration"], "pass"
    )
    assert report.summary["rounds"] == 3 and report.summary["aggregates"] == 3
    assert all(r.recomputed for r in report.rounds)
    assert report.summary["total_supply"] == history.fed.deployment.token.total_supply()


def test_the_harmful_update_is_rejected_and_its_voters_rewarded_for_rejecting_it(history):
    report = audit_deployment(history.fed.deployment)
    second = report.rounds[1]
    assert (second.accepted, second.rejected) == (3, 1)


def test_a_tampered_stored_update_is_found(history, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(history.root, root)
    cid = history.fed.deployment.rounds.update(1, 0).cid
    obj = root / "objects" / cid[-2:] / cid
    data = bytearray(obj.read_bytes())
    data[-1] ^= 0x01
    obj.write_bytes(bytes(data))
    report = audit_deployment(history.fed.deployment, store=LocalStore(root))
    assert report.kinds() == {"tampered-object"}
    (finding,) = report.findings
    assert finding.round == 1 and cid in finding.message


def test_a_missing_stored_update_is_found(history, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(history.root, root)
    cid = history.fed.deployment.rounds.update(2, 1).cid
    (root / "objects" / cid[-2:] / cid).unlink()
    report = audit_deployment(history.fed.deployment, store=LocalStore(root))
    assert report.kinds() == {"missing-object"}


def test_an_aggregate_confirmed_by_colluders_that_does_not_recompute_is_found(history):
    forged = history.sim.run_round(colluders=[0, 1])
    assert forged.aggregate_cid != forged.honest_aggregate_cid
    report = audit_deployment(history.fed.deployment, store=history.store)
    assert report.kinds() == {"aggregate-mismatch"}
    (finding,) = report.findings
    assert finding.round == forged.round
    for colluder in history.fed.members[:2]:
        assert colluder.address in finding.message
    assert report.rounds[-1].recomputed is False


def test_a_lying_voter_is_found(history):
    for _ in range(2):
        history.sim.run_round(harmful=[3], liars=[1])
    report = audit_deployment(history.fed.deployment, store=history.store)
    liar = history.fed.members[1].address
    assert report.kinds() == {"outlier-voter"}
    assert [f.member for f in report.findings] == [liar]


def test_a_voter_contradicting_its_own_measurement_is_found(history):
    fed = history.fed
    first: dict[int, int] = {}

    def vote(voter: int, update: int) -> tuple[bool, int]:
        if voter != 2:
            return True, 40_000
        # approves one update with a loss increase and rejects another it measured as a gain
        first.setdefault(voter, update)
        return (True, -20_000) if first[voter] == update else (False, 40_000)

    record = fed.run_round(vote=vote, claim=False)
    report = audit_deployment(fed.deployment)
    assert "inconsistent-vote" in report.kinds()
    assert {f.member for f in report.findings if f.kind == "inconsistent-vote"} == {fed.members[2].address}
    assert record.accepted


def test_a_voter_tolerating_a_small_loss_increase_is_not_a_contradiction(history):
    # the default node approves down to -20,000 micro-nats: a policy the chain does not hold, not a lie
    fed = history.fed
    fed.run_round(vote=lambda voter, update: (True, -15_000) if voter == 2 else (True, 40_000), claim=False)
    report = audit_deployment(fed.deployment)
    assert "inconsistent-vote" not in report.kinds()


def test_the_audit_reads_only_the_chain(history):
    """A deployment object attached afresh (no node state, no simulator) gives the same report."""
    from codecoop.chain.deployment import Deployment

    d = Deployment(history.fed.chain, history.fed.deployment.record)
    assert audit_deployment(d, store=history.store).findings == []


def test_without_a_store_the_storage_checks_are_skipped_not_passed(history):
    report = audit_deployment(history.fed.deployment)
    status = {c.name: c.status for c in report.checks}
    assert status["storage"] == status["aggregates"] == "skipped"
    assert report.clean


def test_recomputation_can_be_turned_off(history):
    report = audit_deployment(history.fed.deployment, store=history.store, recompute=False)
    status = {c.name: c.status for c in report.checks}
    assert (status["storage"], status["aggregates"]) == ("pass", "skipped")


def test_an_update_committed_but_never_disclosed_is_decided_rejected_and_audits_clean(history):
    from codecoop.chain.clients import Ballot, UpdateDisclosure
    from codecoop.chain.deployment import raw_cid
    from codecoop.chain.devtools import commit_and_disclose

    fed = history.fed
    d, m = fed.deployment, fed.members
    r = d.rounds.open_round(m[0])
    d.rounds.commit_update(m[3], UpdateDisclosure(r, raw_cid(b"withheld"), 5))  # update 0: never disclosed
    commit_and_disclose(d, [(m[i], UpdateDisclosure(r, raw_cid(f"shown {i}".encode()), 5)) for i in (1, 2)])
    info = d.rounds.round(r)
    fed.chain.mine_to(info.disclose_end + 1)
    ballots = {i: Ballot.of({u: (True, 30_000) for u in (1, 2) if u != i}) for i in (0, 1, 2)}
    for i, b in ballots.items():
        d.rounds.commit_votes(m[i], r, b)
    fed.chain.mine_to(info.commit_end + 1)
    for i, b in ballots.items():
        d.rounds.reveal_votes(m[i], r, b)
    fed.chain.mine_to(info.reveal_end + 1)
    assert d.rounds.finalize(m[0], r).accepted_ids == (1, 2)
    report = audit_deployment(d, recompute=False)
    assert [f for f in report.findings if f.check == "rounds"] == []
    assert {c.name: c.status for c in report.checks}["rounds"] == "pass"
