"""Selective update: a node whose own improvement is below its threshold does not submit, and still votes."""

from __future__ import annotations

import pytest

from codecoop.chain import Phase
from codecoop.sim import Hooks, SimConfig, Simulation

pytestmark = pytest.mark.slow


def test_nodes_below_the_threshold_skip_and_the_round_completes_without_updates():
    events = []
    config = SimConfig(orgs=3, rounds=1, steps=2, eval_blocks=4, max_files_per_org=20, baselines=False,
                       min_improvement_micro=10**9)
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
