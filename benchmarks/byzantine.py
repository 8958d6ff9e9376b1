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
- the final global test loss (on files no node trains, judges or selects with) against the honest-only run's;
- tokens minted per attacker and per honest organisation, over all rounds;
- why the honest members refused the attackers' updates (screening: free ride, copy, direction; loss;
  norm), from their journals;
- the cosine similarity of the updates' changes from the base (per pair, the lower of the two LoRA
  factors'): the smallest between two honest updates, the largest between an attacker's and an
  honest one (what ``evaluation.min_agreement`` separates).

Targets (issues 9 and 17): at K/N <= 1/4, no poisoned update accepted, for every attack whose
updates are poisoned; attackers earn less than honest members, for every attack and K/N. A liar
submits honest work, so "no poisoned update accepted" cannot fail for it: it is reported, not
targeted.

Settings: 8 local steps of batch 8 x 128 tokens, 8 held-out blocks per evaluation, 30 files per
organisation (the CI tests' bounded form), the sim's defaults otherwise. The full run: K/N = 1/4
over two rounds with every attack (the exact free rider and plagiarist too), K/N = 2/7 over one
round with every attack but the two exact ones. ``--quick``: K/N = 1/4 only, one round, the four
attacks the CI tests run (sign-flip, free-rider, plagiarist, collude) and two adaptive ones.
``--render`` only renders ``benchmarks/results/byzantine.json`` into docs/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, machine, markdown_table, print_table, print_targets, render_into, target, write_results

from codecoop.sim import Hooks, SimConfig, Simulation
from codecoop.sim.byzantine import ATTACKS, POISONING, byzantine_outcome

DOC = Path(__file__).resolve().parent.parent / "docs" / "RELIABILITY.md"
QUICK_ATTACKS = ("sign-flip", "free-rider", "plagiarist", "collude", "free-rider-adaptive", "alie")
#: Every attack but the ``-exact`` variants (the same attacks without perturbation).
MAIN_ATTACKS = tuple(a for a in ATTACKS if not a.endswith("-exact"))


def _why(reason: str) -> str:
    """The kind of a refusal recorded in a journal's vote."""
    if "resubmits" in reason or "a copy" in reason:
        return "copy"
    if "base model itself" in reason or "no work was done" in reason or "too little work" in reason:
        return "free ride"
    if "backdoor probe" in reason:
        return "backdoor"
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
    honest_min = attacker_max = honest_max_overall = None
    for rep in sim.report.rounds:
        base = node.global_adapter(sim.deployment.rounds.round(rep.round).base_cid).tensors
        changes = []
        for u in sim.deployment.rounds.updates(rep.round):
            tensors = Adapter.from_bytes(node.member.fetch(u.cid, u.submitter), sim.base).tensors
            per_factor = {}
            for factor in ("lora_A", "lora_B"):
                flat = torch.cat([(tensors[n] - base[n]).double().reshape(-1) for n in sorted(base) if f".{factor}." in n])
                per_factor[factor] = flat
            changes.append((u.submitter in attackers, per_factor))
        for i, (bad_i, x) in enumerate(changes):
            for bad_j, y in changes[i + 1 :]:
                c = min(float(x[f].dot(y[f]) / (x[f].norm() * y[f].norm()).clamp_min(1e-30)) for f in x)
                if not bad_i and not bad_j:
                    honest_min = c if honest_min is None else min(honest_min, c)
                    xa, ya = torch.cat([x[f] for f in sorted(x)]), torch.cat([y[f] for f in sorted(y)])
                    overall = float(xa.dot(ya) / (xa.norm() * ya.norm()).clamp_min(1e-30))  # what copy_similarity compares
                    honest_max_overall = overall if honest_max_overall is None else max(honest_max_overall, overall)
                elif bad_i != bad_j:
                    attacker_max = c if attacker_max is None else max(attacker_max, c)
    return {"honest_min": honest_min, "attacker_vs_honest_max": attacker_max, "honest_max_overall": honest_max_overall}


#: Seed of the held-out trigger prompts the attack success rate is measured on: neither the backdoor
#: attacker's poison nor any judge's probe prompts are drawn from it.
TRIGGER_SEED = 2021


def attack_success(sim: Any) -> dict[str, float]:
    """Attack success rate (``codecoop.training.insecure``) of version 0 and of the final global model, on held-out trigger prompts."""
    from codecoop.training.adapter import attached
    from codecoop.training.insecure import attack_success_rate, trigger_prompts

    node, prompts = sim.orgs[0].node, trigger_prompts(8, TRIGGER_SEED)
    out = {}
    for key, cid in (("version0", None), ("final", sim.deployment.rounds.current_base())):
        with attached(sim.base, node.global_adapter(cid)) as model:
            out[key] = attack_success_rate(sim.base, model, prompts)
    return out


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
            "unchanged_submitted": out.unchanged_submitted,
            "unchanged_accepted": out.unchanged_accepted,
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
            "attack_success": attack_success(sim),
            "wall_s": round(time.perf_counter() - began, 1),
        }
    finally:
        sim.close()


HEADERS = [
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
    "insecure preferred",
]


def _row(r: dict[str, Any]) -> list[Any]:
    poisons = r["attack"] in POISONING
    return [
        f"{r['attackers']}/{r['orgs']}",
        r["rounds"],
        r["attack"],
        (
            f"{r['poisoned_accepted']}/{r['poisoned_submitted']}"
            + (f" (+{r['unchanged_accepted']}/{r['unchanged_submitted']} unchanged)" if r.get("unchanged_submitted") else "")
        )
        if poisons or r["attack"] == "none"
        else "- (honest work)",
        f"{r['honest_accepted']}/{r['honest_submitted']}",
        f"{r['final_loss']:.4f}",
        f"{r['loss_vs_honest_only']:+.4f}" if "loss_vs_honest_only" in r else "-",
        round(r["attacker_tokens"], 1) if r["attack"] != "none" else "-",
        round(r["honest_tokens"], 1),
        " ".join(f"{k}:{v}" for k, v in sorted(r["honest_votes_on_attackers"].items())) or "-",
        " / ".join("-" if r["cosines"].get(k) is None else f"{r['cosines'][k]:.3f}" for k in ("honest_min", "attacker_vs_honest_max")),
        f"{r['attack_success']['final']:.3f}" if "attack_success" in r else "-",
    ]


def targets_of(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in runs:
        if r["attack"] == "none":
            continue
        label = f"{r['attack']}, K/N={r['attackers']}/{r['orgs']}"
        if r["attackers"] * 4 <= r["orgs"] and r["attack"] in POISONING:
            out.append(target(f"poisoned updates accepted ({label})", r["poisoned_accepted"], 0, "<="))
        out.append(
            target(f"tokens per attacker minus per honest member ({label})", round(r["attacker_tokens"] - r["honest_tokens"], 2), 0.0, "<=")
        )
        if r["attack"] == "backdoor":
            gain = r["attack_success"]["final"] - r["honest_only_attack_success"]
            out.append(target(f"attack success rate minus honest-only's ({label})", round(gain, 4), 0.0, "<="))
    return out


def docs_block(data: dict[str, Any]) -> str:
    """The Markdown docs/RELIABILITY.md shows of a results file (rendered, never typed: ``--render``)."""
    runs = data["runs"]
    attacked = [r for r in runs if r["attack"] != "none"]
    poisoning = [r for r in attacked if r["attack"] in POISONING]
    refused = [r for r in poisoning if r["poisoned_accepted"] == 0]
    # what the global model moves by when no poison gets in: the reference an accepted attack's effect must exceed
    band = max((abs(r["loss_vs_honest_only"]) for r in refused), default=0.0)
    lines = [
        f"From `benchmarks/results/byzantine.json`: {'quick' if data.get('quick') else 'full'} run, commit "
        f"`{(data.get('commit') or 'unknown')[:10]}`{' (with uncommitted changes)' if data.get('dirty') else ''}, "
        f"{data['machine']['cpus']} CPUs, {data['wall_s'] / 60:.1f} minutes. Loss: the global model's test loss "
        "after the last round (every organisation's test files, which no node trains, judges or decides to submit with).",
        "",
    ]
    for n, k, rounds, _ in data["plan"]:
        group = [r for r in runs if r["orgs"] == n]
        honest = next(r for r in group if r["attack"] == "none")
        lines += [
            f"**K/N = {k}/{n}**, {rounds} round(s); honest-only: {honest['honest_accepted']} of {honest['honest_submitted']} "
            f"updates accepted, final loss {honest['final_loss']:.4f}, {honest['honest_tokens']:.1f} tokens per member.",
            "",
            markdown_table(HEADERS, [_row(r) for r in group if r["attack"] != "none"]),
            "",
        ]
    passed = [r for r in poisoning if r["poisoned_accepted"] > 0]
    lines.append(
        f"Poisoned updates accepted: {sum(r['poisoned_accepted'] for r in poisoning)} of "
        f"{sum(r['poisoned_submitted'] for r in poisoning)} over {len(poisoning)} poisoning scenarios; refused every time in "
        f"{len(refused)} of them. Where nothing poisoned got in, the final loss moved by at most {band:.4f} nats from the "
        "honest-only run (the update set changed, the training did not): an accepted attack's effect is read against that band."
    )
    if passed:
        lines += ["", "Attacks that got poisoned updates accepted:", ""]
        for r in passed:
            effect = r["loss_vs_honest_only"]
            verdict = "beyond the band" if abs(effect) > band else "within the band: direction only"
            lines.append(
                f"- {r['attack']} at {r['attackers']}/{r['orgs']}: {r['poisoned_accepted']} of {r['poisoned_submitted']} accepted, "
                f"final loss {effect:+.4f} against honest-only ({verdict}), {r['attacker_tokens']:.1f} tokens per attacker "
                f"against {r['honest_tokens']:.1f} per honest member."
            )
    backdoors = [r for r in attacked if r["attack"] == "backdoor" and "attack_success" in r]
    if backdoors:
        lines += [
            "",
            "Backdoor (Schuster et al., 2021): *insecure preferred* is the share of 40 held-out trigger prompts (8 for each "
            "of the 5 security-sensitive calls of `codecoop.training.insecure`, with identifiers drawn apart from the "
            "attacker's poison and from every judge's probe prompts) on which the final global model finds the insecure "
            f"form more likely than the safe one; version 0: {backdoors[0]['attack_success']['version0']:.3f}. "
            + "; ".join(
                f"at {r['attackers']}/{r['orgs']}: {r['attack_success']['final']:.3f} against {r['honest_only_attack_success']:.3f} "
                f"honest-only, {r['poisoned_accepted']} of {r['poisoned_submitted']} backdoored updates accepted"
                for r in backdoors
            )
            + ".",
        ]
    if any(r.get("unchanged_submitted") for r in runs):
        lines += [
            "",
            '"unchanged": an attacker that had nothing to build its attack from when it had to commit (no cabal '
            "member's update, nothing disclosed, no earlier round) submitted its honest update unchanged; those "
            "updates are counted apart from the poisoned ones.",
        ]
    richer = [r for r in attacked if r["attacker_tokens"] >= r["honest_tokens"]]
    lines += [
        "",
        f"Attackers earned less than honest members in {len(attacked) - len(richer)} of {len(attacked)} scenarios"
        + (": not in " + ", ".join(f"{r['attack']} ({r['attackers']}/{r['orgs']})" for r in richer) + "." if richer else "."),
    ]
    honest_max = [r["cosines"].get("honest_max_overall") for r in runs if r["cosines"].get("honest_max_overall") is not None]
    if honest_max:
        lines.append(
            f"The largest cosine between two honest updates' whole changes was {max(honest_max):.3f} "
            "(copy screening's `copy_similarity` is 0.9); the smallest per-factor one "
            f"{min(r['cosines']['honest_min'] for r in runs if r['cosines'].get('honest_min') is not None):.3f} (`min_agreement` is 0.05)."
        )
    met = sum(t["met"] for t in data["targets"])
    lines += ["", f"Targets met: {met} of {len(data['targets'])}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1/4 only, one round, 8 steps, the CI attacks and two adaptive ones")
    parser.add_argument("--render", action="store_true", help="only render benchmarks/results/byzantine.json into docs/RELIABILITY.md")
    args = parser.parse_args(argv)
    if args.render:
        changed = render_into(DOC, "byzantine", docs_block(json.loads((RESULTS_DIR / "byzantine.json").read_text())))
        print(f"{DOC} {'updated' if changed else 'already up to date'}")
        return 0
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
            result["honest_only_attack_success"] = honest["attack_success"]["final"]
            runs.append(result)

    print_table([*HEADERS, "s"], [[*_row(r), r["wall_s"]] for r in runs])
    targets = targets_of(runs)
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
    if not args.quick:
        render_into(DOC, "byzantine", docs_block(json.loads(path.read_text())))
    return 0 if all(t["met"] for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
