"""Byzantine organisations in ``codecoop sim``: with the robust defaults no poisoned update is
accepted at K/N = 1/4 and the attacker earns less than the honest members.

The scenario tests are the bounded form of ``benchmarks/byzantine.py``: 4 organisations, one round,
8 local steps on ``tiny``; the honest members are the real, unmodified node.
"""

from __future__ import annotations

import functools

import pytest

from codecoop.errors import ConfigError
from codecoop.node import Node, Parts
from codecoop.sim import Hooks, SimConfig, Simulation
from codecoop.sim.byzantine import ATTACKS, POISONING, ByzantineSpec, assign_attacks, byzantine_outcome, node_factories, parse_byzantine


# ---------------------------------------------------------------------- specs (fast)
def test_a_spec_is_count_colon_attack():
    assert ByzantineSpec.parse("2:sign-flip") == ByzantineSpec(2, "sign-flip")
    assert str(ByzantineSpec.parse(" 1 : collude ")) == "1:collude"


@pytest.mark.parametrize("text", ["sign-flip", "0:noise", "x:noise", "1:", "1:gradient-ascent"])
def test_a_bad_spec_is_refused_with_what_it_must_look_like(text):
    with pytest.raises(ConfigError, match="--byzantine"):
        ByzantineSpec.parse(text)


def test_at_least_two_organisations_stay_honest():
    assert sum(s.count for s in parse_byzantine(["1:noise", "1:liar"], 4)) == 2
    with pytest.raises(ConfigError, match="fewer than 2 honest"):
        parse_byzantine(["2:noise", "1:liar"], 4)


def test_the_last_organisations_attack_in_spec_order_and_the_rest_run_the_real_node():
    specs = parse_byzantine(["1:noise", "2:collude"], 7)
    assert assign_attacks(specs, 7) == [None, None, None, None, "noise", "collude", "collude"]
    factories = node_factories(specs, 7, seed=0)
    assert factories[:4] == [Node] * 4
    # attackers run the real round driver with replaced parts
    assert all(isinstance(f, functools.partial) and f.func is Node for f in factories[4:])
    parts = [f.keywords["parts"] for f in factories[4:]]
    assert parts[0].judge is Parts().judge and parts[0].trainer is not Parts().trainer
    # colluders share one cabal
    assert parts[1].judge.keywords["cabal"] is parts[2].judge.keywords["cabal"]


def test_every_attack_but_the_liar_poisons_its_own_update():
    assert set(ATTACKS) - POISONING == {"liar"}


# ---------------------------------------------------------------------- scenarios (slow)
def _attacked(attack: str):
    config = SimConfig(
        orgs=4,
        rounds=1,
        steps=8,
        eval_blocks=8,
        max_files_per_org=30,
        baselines=False,
        byzantine=(f"1:{attack}",),
        min_improvement_micro=-(10**9),
    )  # every member submits, whatever its training gives
    sim = Simulation(config, Hooks())
    try:
        sim.run()
        outcome = byzantine_outcome(sim)
        attacker = next(iter(outcome.attacks))
        reasons = [
            v["reason"]
            for o in sim.orgs
            if o.name != attacker
            for e in o.node.journal.rounds.values()
            for v in e.votes.values()
            if v["submitter"] == sim.orgs[-1].node.address
        ]
        return outcome, reasons
    finally:
        sim.close()


def _holds(outcome) -> None:
    assert outcome.attacks == {"org-3": next(iter(outcome.attacks.values()))}
    assert outcome.poisoned_submitted == 1 and outcome.poisoned_accepted == 0
    assert outcome.honest_accepted >= 1
    assert outcome.attacker_tokens < outcome.honest_tokens


@pytest.mark.slow
def test_a_sign_flipped_update_is_rejected_and_earns_less():
    outcome, reasons = _attacked("sign-flip")
    _holds(outcome)
    # refused on loss, or before any forward pass when the judge has an own update to compare directions with
    assert len(reasons) == 3 and all(r.startswith("loss delta") or "cosine similarity" in r for r in reasons)


@pytest.mark.slow
def test_a_plagiarised_update_is_rejected_as_a_copy_of_the_earlier_one():
    outcome, reasons = _attacked("plagiarist")
    _holds(outcome)
    assert len(reasons) == 3 and all("a copy" in r or "resubmits" in r for r in reasons)


@pytest.mark.slow
def test_a_free_rider_is_refused_by_screening_and_earns_less():
    outcome, reasons = _attacked("free-rider")
    _holds(outcome)
    assert len(reasons) == 3 and all("no work was done" in r for r in reasons)


@pytest.mark.slow
def test_a_colluder_alone_cannot_get_its_poison_accepted():
    outcome, reasons = _attacked("collude")
    _holds(outcome)
    assert len(reasons) == 3 and not any(r == "" for r in reasons)
