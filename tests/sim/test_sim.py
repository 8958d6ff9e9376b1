"""The main job in small: 3 organisations, 2 rounds on tiny, through every contract state."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codecoop.chain import Phase
from codecoop.sim import Hooks, SimConfig, Simulation

pytestmark = pytest.mark.slow

EVERY_PHASE = [
    p.name for p in (Phase.SUBMIT, Phase.DISCLOSE, Phase.COMMIT, Phase.REVEAL, Phase.FINALIZABLE, Phase.CONFIRM, Phase.COMPLETED)
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    events = []
    # every member submits and every update is accepted, whatever 8 training steps give: the tests below check
    # the protocol (phases, aggregates, rewards), not how well tiny learns
    config = SimConfig(
        orgs=3, rounds=2, steps=8, eval_blocks=8, max_files_per_org=30, min_improvement_micro=-(10**9),
        approve_min_delta_micro=-(10**9), screening=False,
    )  # fmt: skip
    sim = Simulation(config, Hooks(on_event=events.append))
    try:
        report = sim.setup()
        for _ in range(config.rounds):
            sim.run_round()
        yield sim, report, events
    finally:
        sim.close()


def test_an_audit_of_a_real_simulation_recomputes_every_aggregate_and_is_clean(finished):
    from codecoop.audit.run import audit_deployment

    sim, report, _ = finished
    audit = audit_deployment(sim.deployment, store=sim.orgs[0].node.store)
    assert audit.clean, [f.message for f in audit.findings]
    aggregates = next(c for c in audit.checks if c.name == "aggregates")
    assert aggregates.status == "pass" and aggregates.checked == len(report.rounds)


def test_every_round_passes_through_every_contract_state(finished):
    _, report, _ = finished
    assert [r.phases for r in report.rounds] == [EVERY_PHASE, EVERY_PHASE]
    assert all(r.outcome == "completed" and r.submitted == 3 and r.accepted >= 1 for r in report.rounds)


def test_each_round_reports_the_loss_of_the_global_model_it_adopted(finished):
    sim, report, _ = finished
    losses = [report.initial_loss] + [r.global_loss for r in report.rounds]
    assert all(a != b for a, b in zip(losses, losses[1:])), "every round adopts a new global model"
    for rep in report.rounds:
        adopted = sim.orgs[1].node.global_adapter(rep.global_cid)
        assert rep.global_loss == pytest.approx(sim.global_loss(adopted), rel=1e-9)


def test_no_node_holds_a_test_file_and_the_report_gives_validation_and_test_loss_side_by_side(finished, tmp_path):
    sim, report, _ = finished
    for o in sim.orgs:
        held = {d.path for d in o.node.member.corpus.documents}  # everything the node trains, judges and selects with
        test = {d.path for d in o.test.documents}
        assert test and held and not held & test, o.name
        assert not o.test.train, "the test corpus has no training documents"
    for org, o in zip(report.orgs, sim.orgs):
        assert (org.test_files, org.test_tokens) == (len(o.test.validation), o.test.stats.validation_tokens) and org.test_tokens > 0
    for rep in report.rounds:
        adopted = sim.orgs[0].node.global_adapter(rep.global_cid)
        assert rep.validation_loss == pytest.approx(sim.global_loss(adopted, split="validation"), rel=1e-9)
        assert rep.validation_loss != rep.global_loss, "two different sets of files"
    _, md_path = report.write(tmp_path)
    assert "| validation loss | test loss | test ppl |" in md_path.read_text()


def test_each_round_builds_on_the_last_confirmed_aggregate(finished):
    sim, report, _ = finished
    rounds = sim.deployment.rounds
    assert rounds.round(1).base_cid is None
    assert rounds.round(2).base_cid == report.rounds[0].global_cid
    assert rounds.current_base() == report.rounds[1].global_cid


def test_honest_nodes_compute_the_same_aggregate(finished):
    _, _, events = finished
    for r in (1, 2):
        cids = {e.data["cid"] for e in events if e.kind == "aggregated" and e.round == r}
        assert len(cids) == 1


def test_members_are_rewarded_and_gas_is_counted(finished):
    sim, report, _ = finished
    for rep in report.rounds:
        assert all(v > 0 for v in rep.minted.values())
        assert all(v > 0 for v in rep.gas.values())
        assert set(rep.baseline_loss) == {"org-0", "org-1", "org-2"}
    token = sim.deployment.token
    assert all(token.balance_of(o.node.address) > 0 for o in sim.orgs)


def test_the_report_is_written_as_json_and_markdown(finished, tmp_path):
    _, report, _ = finished
    json_path, md_path = report.write(tmp_path)
    data = json.loads(json_path.read_text())
    assert data["improved"] == (data["final_loss"] < data["initial_loss"]) and len(data["rounds"]) == 2
    assert "| round | outcome |" in md_path.read_text()


def test_the_sim_command_runs_with_its_defaults(tmp_path, capsys):
    # the README's main job is `codecoop sim` with every default; this runs the same command line,
    # shortened only by the options a user would pass to try it quickly
    from codecoop.cli import main

    assert main(["sim", "--orgs", "2", "--rounds", "1", "--steps", "2", "--no-baselines", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "round 1" in out.lower()
    # the round ends either way; whether two training steps earn an approval is not this test's to decide
    assert json.loads((tmp_path / "report.json").read_text())["rounds"][0]["outcome"] in ("completed", "completed, nothing accepted")


def test_every_peer_update_is_fetched_into_each_organisations_own_store_and_counted(finished, tmp_path):
    sim, report, _ = finished
    fetched = served = 0
    for o in sim.orgs:
        peer_updates = [u.cid for r in (1, 2) for u in sim.deployment.rounds.updates(r) if u.submitter != o.node.address]
        assert len(peer_updates) == 4 and all(o.node.store.has(cid) for cid in peer_updates)
        c = report.network[o.name]
        # each peer update once, and at most one global version per round it did not aggregate itself
        assert 4 <= c["objects"] <= 6 and set(c["by_path"]) == {"in-process"} and o.node.address not in c["by_peer"]
        assert o.node.journal.network["objects"] == c["objects"]  # journaled at every fetch
        fetched += c["objects"]
        served += sum(row["objects"] for row in c["served"].values())
    assert served == fetched
    assert sum(report.rounds[0].fetched_bytes.values()) > 0
    _, md_path = report.write(tmp_path)
    assert "## Network" in md_path.read_text()


def test_a_simulation_over_libp2p_fetches_every_peer_update_through_real_hosts(tmp_path):
    # three real libp2p hosts on 127.0.0.1; every member submits (forced), so each must fetch two peers' updates to vote
    config = SimConfig(
        orgs=3, rounds=1, steps=2, eval_blocks=4, max_files_per_org=10, baselines=False, transport="libp2p",
        min_improvement_micro=-(10**9), approve_min_delta_micro=-(10**9), screening=False, workdir=str(tmp_path),
    )  # fmt: skip
    copies_at_submission: list[int] = []

    def on_event(e):
        if e.kind == "submitted":  # the submitter offered its update first, and registered it once a peer held a copy
            org = next(o for o in sim.orgs if o.name == e.node)
            cid = org.node.journal.entry(e.round).trained_cid
            copies_at_submission.append(sum(o.node.store.has(cid) for o in sim.orgs if o is not org))

    sim = Simulation(config, Hooks(on_event=on_event))
    try:
        report = sim.setup()
        rep = sim.run_round()
        assert rep.outcome.startswith("completed") and rep.submitted == 3
        assert len(copies_at_submission) == 3 and min(copies_at_submission) >= 1, copies_at_submission
        peer_ids = {o.node.transport.host.peer_id for o in sim.orgs}
        fetched = served = 0
        for o in sim.orgs:
            c = report.network[o.name]
            own = o.node.transport.host.peer_id
            assert c["by_path"]["libp2p"]["objects"] >= 2 and set(c["by_path"]) == {"libp2p"}, c
            assert set(c["by_peer"]) <= peer_ids - {own}
            peer_updates = [u.cid for u in sim.deployment.rounds.updates(1) if u.submitter != o.node.address]
            assert all(o.node.store.has(cid) for cid in peer_updates)
            fetched += c["objects"]
        for o in sim.orgs:  # served counts are taken on each host's loop: read them once every fetch returned
            served += sum(row["objects"] for row in o.node.transport.counters.served.values())
        assert served == fetched
    finally:
        sim.close()


def test_members_who_cannot_fetch_an_update_abstain_on_it_instead_of_rejecting_it(tmp_path):
    config = SimConfig(
        orgs=3, rounds=1, steps=2, eval_blocks=4, max_files_per_org=10, baselines=False,
        min_improvement_micro=-(10**9), approve_min_delta_micro=-(10**9), screening=False, workdir=str(tmp_path),
    )  # fmt: skip
    sim = Simulation(config)
    try:
        sim.setup()
        cut_off = sim.orgs[2].node
        cut_off.transport.close()  # nobody can fetch from org-2 any more; it still fetches from the others
        rep = sim.run_round()
        rounds = sim.deployment.rounds
        theirs = next(u for u in rounds.updates(1) if u.submitter == cut_off.address)
        assert (theirs.approvals, theirs.rejections) == (0, 0), "unreachable is not harmful: no rejection"
        for o in sim.orgs[:2]:
            vote = o.node.journal.entry(1).votes[str(theirs.update_id)]
            assert vote["approve"] is None and vote["reason"].startswith("abstained: ")
        accepted = {u.submitter for u in rounds.updates(1) if u.update_id in rounds.round(1).accepted_ids}
        assert accepted == {sim.orgs[0].node.address, sim.orgs[1].node.address} and rep.accepted == 2
    finally:
        sim.close()


class Killed(BaseException):
    """Stands for SIGKILL: escapes every handler."""


def _org2_killed_after_disclosing(tmp_path: Path, before: Callable[[Simulation], None] = lambda sim: None) -> tuple[Simulation, Any, Any]:
    """Three libp2p organisations; org-2 is killed right after its submitUpdate and its host goes offline, and
    the others finish the round: ``(simulation, org-2's node, the round's report)``; the caller closes it."""

    def on_event(e):
        if e.node == "org-2" and e.kind == "submitted":
            raise Killed(e.kind)

    config = SimConfig(
        orgs=3, rounds=1, steps=2, eval_blocks=4, max_files_per_org=10, baselines=False, transport="libp2p",
        confirmations=2, min_improvement_micro=-(10**9), approve_min_delta_micro=-(10**9), screening=False, workdir=str(tmp_path),
    )  # fmt: skip
    sim = Simulation(config, Hooks(on_event=on_event))
    try:
        sim.setup()
        gone = sim.orgs[2].node
        before(sim)
        r = sim.open_round()
        with pytest.raises(Killed):
            sim.drive(r)
        gone.transport.close()  # offline: nobody can fetch from org-2 any more
        del sim.orgs[2]
        return sim, gone, sim.drive(r)
    except BaseException:
        sim.close()
        raise


def test_the_submitter_gone_right_after_registering_its_update_does_not_stop_the_round(tmp_path):
    # the others judge and aggregate its update from the copies they took of its offer (node.replicas = 1)
    sim, gone, rep = _org2_killed_after_disclosing(tmp_path)
    try:
        rounds = sim.deployment.rounds
        theirs = next(u for u in rounds.updates(1) if u.submitter == gone.address)
        assert rep.outcome == "completed" and theirs.update_id in rounds.round(1).accepted_ids
        assert all(o.node.store.has(theirs.cid) for o in sim.orgs)
        assert (theirs.approvals, theirs.rejections) == (2, 0)
    finally:
        sim.close()


def test_an_offer_whose_first_announcement_reached_nobody_is_announced_again_until_a_peer_holds_a_copy(tmp_path, monkeypatch):
    # gossip published before the peers were connected is lost: the submitter must not register its update with no
    # copy taken (and then be unreachable), it announces the offer again while it waits
    import codecoop.node.node as node_module

    monkeypatch.setattr(node_module, "_REANNOUNCE_S", 0.0)
    lost: list[str] = []

    def lose_the_first_announcement(sim: Simulation) -> None:
        transport = sim.orgs[2].node.transport
        announced = transport.announce

        def first_one_lost(round: int, cid: str) -> None:
            if not lost:
                lost.append(cid)
                return
            announced(round, cid)

        transport.announce = first_one_lost

    sim, gone, rep = _org2_killed_after_disclosing(tmp_path, lose_the_first_announcement)
    try:
        theirs = next(u for u in sim.deployment.rounds.updates(1) if u.submitter == gone.address)
        assert lost == [theirs.cid], "the first announcement was the offer, and it was dropped"
        assert rep.outcome == "completed" and theirs.update_id in sim.deployment.rounds.round(1).accepted_ids
        assert all(o.node.store.has(theirs.cid) for o in sim.orgs)
    finally:
        sim.close()


@pytest.mark.parametrize("limit", [0.4, 0.0])
def test_the_backdoor_probe_refuses_an_update_that_pushes_the_insecure_forms_and_is_off_at_zero(tmp_path, monkeypatch, limit):
    # the path is forced: every update "raises the insecure forms' log-odds by 10 nats" (what a backdoor's does
    # is measured in benchmarks/byzantine.py); the probe refuses each, and at 0 it never runs
    from dataclasses import replace

    import codecoop.training.insecure as insecure

    shifts = []

    def forced(before, after):
        assert len(before) == len(after) == 8 * len(insecure.PATTERNS)
        shifts.append(10.0)
        return 10.0

    monkeypatch.setattr(insecure, "insecure_shift", forced)
    config = SimConfig(
        orgs=3, rounds=1, steps=2, eval_blocks=4, max_files_per_org=10, baselines=False,
        min_improvement_micro=-(10**9), approve_min_delta_micro=-(10**9), screening=False, workdir=str(tmp_path),
    )  # fmt: skip
    sim = Simulation(config)
    try:
        sim.setup()
        for o in sim.orgs:
            o.node.member.settings = o.node.settings = replace(o.node.settings, insecure_shift_max=limit)
        rep = sim.run_round()
        votes = [v for o in sim.orgs for v in o.node.journal.entry(1).votes.values()]
        assert len(votes) == 6
        if limit:
            assert len(shifts) == 6 and rep.accepted == 0
            assert all(v["approve"] is False and v["reason"].startswith("refused: backdoor probe: ") for v in votes)
        else:
            assert shifts == [] and not any("backdoor" in v["reason"] for v in votes) and rep.accepted == 3
    finally:
        sim.close()


def test_members_who_leave_or_are_removed_by_governance_end_cleanly_and_the_others_go_on(tmp_path):
    from codecoop.chain.clients import MemberStatus
    from codecoop.chain.devtools import pass_proposal
    from codecoop.governance import member_action

    events = []
    config = SimConfig(
        orgs=4, rounds=2, steps=2, eval_blocks=4, max_files_per_org=10, baselines=False, confirmations=2,
        min_improvement_micro=-(10**9), approve_min_delta_micro=-(10**9), screening=False, workdir=str(tmp_path),
    )  # fmt: skip
    sim = Simulation(config, Hooks(on_event=events.append))
    sim.setup()
    leaver, removed = sim.orgs[2].node, sim.orgs[3].node
    leaver.settings = dataclasses.replace(leaver.settings, claim=False)  # so that ending has a reward to claim
    first = sim.run_round()
    assert first.outcome == "completed" and sim.deployment.rounds.entitlement(1, leaver.address) > 0
    d = sim.deployment
    d.members.leave(leaver.account)
    proposal = member_action(d, "remove", removed.address)
    accounts = [o.node.account for o in sim.orgs[:3]]  # the leaver's tokens still vote
    pass_proposal(d, list(proposal.calls), proposal.description, proposer=accounts[0], voters=accounts)
    assert d.members.status(removed.address) is MemberStatus.REMOVED
    events.clear()
    second = sim.run_round()
    assert second.outcome == "completed" and second.submitted == 2 and [o.name for o in sim.orgs] == ["org-0", "org-1"]
    ended = {e.node: e.message for e in events if e.kind == "ended"}
    assert "left the federation" in ended["org-2"] and "removed from the federation by governance" in ended["org-3"]
    assert d.rounds.entitlement(1, leaver.address) == 0, "the leaver claimed what it was owed as it ended"
    assert any(e.node == "org-2" and e.kind == "claimed" and e.round == 1 for e in events)
    assert not [e for e in events if e.node in ("org-2", "org-3") and e.kind not in ("ended", "claimed")]
