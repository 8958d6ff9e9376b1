"""The main job in small: 3 organisations, 2 rounds on tiny, through every contract state."""

from __future__ import annotations

import dataclasses
import json

import pytest

from codecoop.chain import Phase
from codecoop.node import Node
from codecoop.sim import Hooks, SimConfig, Simulation

pytestmark = pytest.mark.slow

EVERY_PHASE = [p.name for p in (Phase.SUBMIT, Phase.COMMIT, Phase.REVEAL, Phase.FINALIZABLE, Phase.CONFIRM, Phase.COMPLETED)]


def _accepting(node: Node) -> Node:
    """The same member, with screening that lets every update through (its journal object is kept)."""
    m = node.member
    settings = dataclasses.replace(m.settings, min_agreement=-1.0, copy_distance=0.0, min_update_change=0.0)
    return Node(
        name=m.name, account=m.account, deployment=m.deployment, store=m.store, transport=m.transport, base=m.base,
        corpus=m.corpus, settings=settings, journal=m.journal, on_event=m.on_event, on_train_step=m.on_train_step,
    )  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    events = []
    # every member submits and every update is accepted, whatever 8 training steps give: the tests below check
    # the protocol (phases, aggregates, rewards), not how well tiny learns
    config = SimConfig(
        orgs=3, rounds=2, steps=8, eval_blocks=8, max_files_per_org=30, min_improvement_micro=-(10**9),
        approve_min_delta_micro=-(10**9),
    )  # fmt: skip
    sim = Simulation(config, Hooks(on_event=events.append))
    try:
        report = sim.setup()
        for o in sim.orgs:
            o.node = _accepting(o.node)
        for _ in range(config.rounds):
            sim.run_round()
        yield sim, report, events
    finally:
        sim.close()


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
    assert data["improved"] is True and len(data["rounds"]) == 2
    assert "| round | outcome |" in md_path.read_text()


def test_the_sim_command_runs_with_its_defaults(tmp_path, capsys):
    # the README's main job is `codecoop sim` with every default; this runs the same command line,
    # shortened only by the options a user would pass to try it quickly
    from codecoop.cli import main

    assert main(["sim", "--orgs", "2", "--rounds", "1", "--steps", "2", "--no-baselines", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "round 1" in out.lower()
    assert json.loads((tmp_path / "report.json").read_text())["rounds"][0]["outcome"] == "completed"
