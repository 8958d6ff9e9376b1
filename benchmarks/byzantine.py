"""Byzantine organisations against the robust defaults: what they got accepted, what they cost, what they earned.

``python benchmarks/byzantine.py [--quick]``

For K/N in {1/4, 2/7}, runs ``codecoop sim`` (real contracts on the embedded chain, real LoRA
training on ``tiny``, real aggregation, the honest members' real, unmodified node) once with no
attacker and once per attack with the last K organisations running it (``--byzantine K:ATTACK``,
``codecoop.sim.byzantine``), all with the same seed, data split and settings. For every run it
reports, read from the chain and the simulation's report:

- poisoned updates submitted and accepted (every update of an attacker, except a liar's, whose
  own update is honest work);
- honest updates submitted and accepted (what the attack, or the defences, cost the honest);
- the final global validation loss against the honest-only run's;
- tokens minted per attacker and per honest organisation, over all rounds;
- why the honest members refused the attackers' updates (screening: free ride, copy, direction; loss;
  norm), from their journals;
- the cosine similarity of the updates' changes from the base (per pair, the lower of the two LoRA
  factors'): the smallest between two honest updates, the largest between an attacker's and an
  honest one (what ``evaluation.min_agreement`` separates).

Targets (issue 9): at K/N <= 1/4, no poisoned update accepted, for every attack; attackers earn
less than honest members, for every attack and K/N.

Settings: 8 local steps of batch 8 x 128 tokens, 8 held-out blocks per evaluation, 30 files per
organisation (the CI tests' bounded form), the sim's defaults otherwise. The full run: K/N = 1/4
over two rounds with all nine attacks (the exact free rider and plagiarist too), K/N = 2/7 over one
round with the seven attacks of issue 9. ``--quick``: K/N = 1/4 only, one round, the four attacks
the CI tests run (sign-flip, free-rider, plagiarist, collude).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import Any

from _common import machine, print_table, print_targets, target, write_results

from codecoop.sim import Hooks, SimConfig, Simulation
from codecoop.sim.byzantine import ATTACKS, byzantine_outcome

QUICK_ATTACKS = ("sign-flip", "free-rider", "plagiarist", "collude")
#: The attacks issue 9 names (the ``-exact`` variants are the same attacks without perturbation).
MAIN_ATTACKS = ("sign-flip", "scale100", "noise", "free-rider", "plagiarist", "collude", "liar")


def _why(reason: str) -> str:
    """The kind of a refusal recorded in a journal's vote."""
    if "resubmits" in reason or "a copy" in reason:
        return "copy"
    if "base model itself" in reason or "no work was done" in reason:
        return "free ride"
    if "cosine similarity" in reason:
        return "direction"
    if "exceeds the bound" in reason:
        return "norm"
    if "non-finite" in reason:
        return "non-finite"
    if reason.startswith("loss delta"):
        return "loss"
    return "other" if reason else "approved"


def _cosines(sim: Any, attackers: set[str]) -> dict[str, float | None]:
    """Per pair of updates, the lower of the ``lora_A`` and ``lora_B`` change cosines (what screening
    compares with ``min_agreement``): its smallest value between two honest updates, and its largest
    between an attacker's update and an honest one."""
    import torch

    from codecoop.training import Adapter

    node = sim.orgs[0].node
    honest_min = attacker_max = None
    for rep in sim.report.rounds:
        base = node.global_adapter(sim.deployment.rounds.round(rep.round).base_cid).tensors
        changes = []
        for u in sim.deployment.rounds.updates(rep.round):
            tensors = Adapter.from_bytes(node.member.fetch(u.cid, u.submitter), sim.base).tensors
            per_factor = {}
            for factor in ("lora_A", "lora_B"):
                flat = torch.cat([(tensors[n] - base[n]).double().reshape(-1) for n in sorted(base) if f".{factor}." in n])
                per_factor[factor] = flat / flat.norm().clamp_min(1e-30)
            changes.append((u.submitter in attackers, per_factor))
        for i, (bad_i, x) in enumerate(changes):
            for bad_j, y in changes[i + 1 :]:
                c = min(float(x[f].dot(y[f])) for f in x)
                if not bad_i and not bad_j:
                    honest_min = c if honest_min is None else min(honest_min, c)
                elif bad_i != bad_j:
                    attacker_max = c if attacker_max is None else max(attacker_max, c)
    return {"honest_min": honest_min, "attacker_vs_honest_max": attacker_max}


def run(orgs: int, k: int, attack: str | None, *, rounds: int, steps: int, eval_blocks: int, files: int) -> dict[str, Any]:
    """One simulation; the outcome as plain data."""
    config = SimConfig(
        orgs=orgs,
        rounds=rounds,
        steps=steps,
        eval_blocks=eval_blocks,
        max_files_per_org=files,
        baselines=False,
        byzantine=(f"{k}:{attack}",) if attack else (),
    )
    began = time.perf_counter()
    sim = Simulation(config, Hooks())
    try:
        report = sim.run()
        out = byzantine_outcome(sim)
        attackers = {o.node.address for o in sim.orgs if o.name in out.attacks}
        refusals: Counter[str] = Counter()
        honest_votes_on_attackers = 0
        for o in sim.orgs:
            if o.node.address in attackers:
                continue
            for entry in o.node.journal.rounds.values():
                for vote in entry.votes.values():
                    if vote["submitter"] in attackers:
                        honest_votes_on_attackers += 1
                        refusals[_why(vote["reason"])] += 1
        return {
            "orgs": orgs,
            "attackers": k if attack else 0,
            "attack": attack or "none",
            "rounds": rounds,
            "steps": steps,
            "poisoned_submitted": out.poisoned_submitted,
            "poisoned_accepted": out.poisoned_accepted,
            "honest_submitted": out.honest_submitted,
            "honest_accepted": out.honest_accepted,
            "initial_loss": report.initial_loss,
            "final_loss": report.final_loss,
            "rounds_outcome": [r.outcome for r in report.rounds],
            "tokens": out.tokens,
            "attacker_tokens": out.attacker_tokens,
            "honest_tokens": out.honest_tokens,
            "honest_votes_on_attackers": dict(refusals),
            "cosines": _cosines(sim, attackers),
            "wall_s": round(time.perf_counter() - began, 1),
        }
    finally:
        sim.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1/4 only, one round, 8 steps, the four CI attacks")
    args = parser.parse_args(argv)
    settings = dict(steps=8, eval_blocks=8, files=30)
    if args.quick:
        plan = [(4, 1, 1, QUICK_ATTACKS)]
    else:
        plan = [(4, 1, 2, ATTACKS), (7, 2, 1, MAIN_ATTACKS)]
    began = time.perf_counter()
    runs: list[dict[str, Any]] = []
    for n, k, rounds, attacks in plan:
        print(f"N={n}: honest-only run, {rounds} round(s) ...", flush=True)
        honest = run(n, k, None, rounds=rounds, **settings)
        runs.append(honest)
        for attack in attacks:
            print(f"N={n}, K={k}: {attack} ...", flush=True)
            result = run(n, k, attack, rounds=rounds, **settings)
            result["honest_only_final_loss"] = honest["final_loss"]
            result["loss_vs_honest_only"] = result["final_loss"] - honest["final_loss"]
            runs.append(result)

    headers = [
        "K/N",
        "rounds",
        "attack",
        "poison acc/sub",
        "honest acc/sub",
        "final loss",
        "vs honest-only",
        "tokens/attacker",
        "tokens/honest",
        "refusals of attackers' updates",
        "cos honest min / attacker max",
        "s",
    ]
    rows = []
    for r in runs:
        rows.append(
            [
                f"{r['attackers']}/{r['orgs']}",
                r["rounds"],
                r["attack"],
                f"{r['poisoned_accepted']}/{r['poisoned_submitted']}",
                f"{r['honest_accepted']}/{r['honest_submitted']}",
                round(r["final_loss"], 4),
                f"{r['loss_vs_honest_only']:+.4f}" if "loss_vs_honest_only" in r else "-",
                round(r["attacker_tokens"], 1) if r["attack"] != "none" else "-",
                round(r["honest_tokens"], 1),
                " ".join(f"{k}:{v}" for k, v in sorted(r["honest_votes_on_attackers"].items())) or "-",
                " / ".join("-" if c is None else f"{c:.3f}" for c in r["cosines"].values()),
                r["wall_s"],
            ]
        )
    print_table(headers, rows)

    targets = []
    for r in runs:
        if r["attack"] == "none":
            continue
        label = f"{r['attack']}, K/N={r['attackers']}/{r['orgs']}"
        if r["attackers"] * 4 <= r["orgs"]:
            targets.append(target(f"poisoned updates accepted ({label})", r["poisoned_accepted"], 0, "<="))
        targets.append(
            target(f"tokens per attacker minus per honest member ({label})", round(r["attacker_tokens"] - r["honest_tokens"], 2), 0.0, "<=")
        )
    print_targets(targets)
    path = write_results(
        "byzantine",
        {
            "quick": args.quick,
            "machine": machine(),
            "settings": settings,
            "plan": [[n, k, rounds, list(a)] for n, k, rounds, a in plan],
            "runs": runs,
            "wall_s": round(time.perf_counter() - began, 1),
        },
        targets,
    )
    print(f"results: {path}")
    return 0 if all(t["met"] for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
