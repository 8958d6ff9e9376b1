"""Selective update: a node whose own improvement is below its threshold does not submit, and still votes."""

from __future__ import annotations

import pytest

from codecoop.chain import Phase
from codecoop.sim import Hooks, SimConfig, Simulation

pytestmark = pytest.mark.slow


def test_nodes_below_the_threshold_skip_and_the_round_completes_without_updates():
    events = []
    config = SimConfig(orgs=3, rounds=1, steps=2, eval_blocks=4, max_files_per_org=20, baselines=False, min_improvement_micro=10**9)
    sim = Simulation(config, Hooks(on_event=events.append))
    try:
        sim.setup()
        report = sim.run_round()
        assert [e.kind for e in events].count("skipped") == 3
        assert "submitted" not in {e.kind for e in events}
        assert report.submitted == 0 and report.skipped == 3
        assert sim.deployment.rounds.phase(report.round) is Phase.COMPLETED
        assert report.global_cid is None  # nothing accepted: the base stays version 0
        assert all(sim.deployment.rounds.participation(report.round, o.node.address).revealed for o in sim.orgs)
    finally:
        sim.close()


def test_a_dp_node_reports_the_privacy_it_has_spent_over_its_released_updates():
    from codecoop.training.dp import epsilon

    events = []
    config = SimConfig(
        orgs=2,
        rounds=2,
        steps=2,
        eval_blocks=4,
        max_files_per_org=20,
        baselines=False,
        min_improvement_micro=-(10**12),
        dp_clip_norm=0.5,
        dp_noise_multiplier=1.0,
    )
    sim = Simulation(config, Hooks(on_event=events.append))
    try:
        sim.run()
        trained = [e for e in events if e.kind == "trained"]
        assert len(trained) == 4  # every member released an update in both rounds
        for e in trained:
            assert e.data["dp_rounds"] == e.round
            assert e.data["epsilon"] == pytest.approx(epsilon(1.0, e.round, 1e-5))
            assert "privacy spent: epsilon" in e.message
        journal = sim.orgs[0].node.journal
        assert all(journal.rounds[r].dp == {"noise_multiplier": 1.0, "delta": 1e-5} for r in (1, 2))
        # an update released without DP makes the guarantee void
        journal.rounds[1].dp = None
        assert journal.privacy_spent(1e-5) == (float("inf"), 2)
    finally:
        sim.close()
