"""A node killed at any step of a round and restarted finishes the round with one submission and one ballot."""

from __future__ import annotations

import dataclasses

import pytest

from codecoop.chain import Phase
from codecoop.node import Journal, Node
from codecoop.node.screening import SCREENING_OFF
from codecoop.sim import Hooks, SimConfig, Simulation

pytestmark = pytest.mark.slow


class Killed(BaseException):
    """Stands for SIGKILL: escapes every handler, and the node object is thrown away."""


def _restart(old: Node, **settings) -> Node:
    """A fresh node on the same key, chain, store and journal file: only what is on disk survives.

    ``settings`` replace node settings of the new node.
    """
    m = old.member
    return Node(
        name=m.name,
        account=m.account,
        deployment=m.deployment,
        store=m.store,
        transport=m.transport,
        base=m.base,
        corpus=m.corpus,
        settings=dataclasses.replace(m.settings, **settings),
        journal=Journal(m.journal.path, deployment=m.journal.deployment),
        on_event=m.on_event,
        on_train_step=m.on_train_step,
    )


def test_a_node_killed_after_every_step_finishes_the_round_with_one_submission_and_one_ballot(tmp_path):
    # kill org-1 right after each of these steps has reached the chain or the journal
    pending = ["trained", "submitted", "committed", "revealed", "confirmed"]
    seen: list[str] = []

    def on_event(event):
        if event.node != "org-1":
            return
        seen.append(event.kind)
        if pending and event.kind == pending[0]:
            pending.pop(0)
            raise Killed(event.kind)

    # every node submits and approves whatever the losses say, so the victim has every step to be killed after
    config = SimConfig(
        orgs=3,
        rounds=1,
        steps=3,
        eval_blocks=4,
        max_files_per_org=25,
        baselines=False,
        confirmations=3,
        min_improvement_micro=-(10**9),
        approve_min_delta_micro=-(10**9),
        workdir=str(tmp_path),
    )
    sim = Simulation(config, Hooks(on_event=on_event))
    sim.setup()
    # ... and screening lets every update through (a 3-step update can point away from another's), so that
    # some update is accepted and the round has a confirm window to be killed in
    for o in sim.orgs:
        o.node = _restart(o.node, **SCREENING_OFF)
    victim = sim.orgs[1]
    r = sim.open_round()
    kills = 0
    while True:
        try:
            report = sim.drive(r)
            break
        except Killed:
            kills += 1
            victim.node = _restart(victim.node)
    assert kills == 5 and not pending

    rounds = sim.deployment.rounds
    start = sim.deployment.record.block
    me = victim.node.address
    assert len(rounds.events("UpdateSubmitted", from_block=start, submitter=me)) == 1
    assert len(rounds.events("VotesCommitted", from_block=start, voter=me)) == 1
    assert len(rounds.events("VotesRevealed", from_block=start, voter=me)) == 1
    assert len(rounds.events("AggregateConfirmed", from_block=start, member=me)) == 1
    assert seen.count("training") == 1, "the restarted node must not train again"
    assert rounds.phase(r) is Phase.COMPLETED and report.accepted == 3
    # the victim's votes count: every other update got its approval or rejection
    part = rounds.participation(r, me)
    assert part.revealed and len(part.voted_ids) == 2
