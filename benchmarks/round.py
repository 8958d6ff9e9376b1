"""Round latency per phase, and what an organisation sends per round.

``python benchmarks/round.py [--quick]``

Runs one full round of ``codecoop sim`` (real contracts on the embedded chain, real LocalStores,
real LoRA training on ``tiny``, real aggregation) for N in {3, 8} organisations with the simulation's
defaults (40 local steps, 16 held-out blocks of 128 tokens per evaluation) and reports, from the
nodes' own timers, the wall time spent per phase: train (the local LoRA run), evaluate (forward
passes on the own held-out code: the round's base and the own adapter for the selective update,
then every peer's update for the vote), publish (adapter bytes, store, submit transaction,
announcement), vote (fetching peers' updates, sanity checks, commit, reveal), finalize, aggregate,
confirm and claim; "chain/other" is the rest of the round (mining to the window ends, phase
reads). Organisations run one after another in one process, so a round's wall time is the sum of
their work.

Targets:
- non-training overhead (everything but the local training run) <= 20% of a round's wall time
  on the embedded chain, for each N;
- protocol overhead (chain, store, transfers, checks, aggregation: neither training nor
  evaluation) <= 20%, for each N;
- bytes an organisation publishes per round <= 2% of the full model's size for LoRA r=8 on
  smollm2-135m (its adapter, fp32). The full run measures it in a one-round smollm2 simulation;
  ``--quick`` computes it from the adapter's size (same bytes, no training).

``--quick`` (under a minute here) runs N = 3 only: the N = 8 round alone trains 8 x 40 steps, about
a minute on this 2-core CPU, so its two share targets are checked by the full run only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, machine, markdown_table, print_table, print_targets, render_into, target, write_results

from codecoop.sim import Hooks, SimConfig, Simulation

ACTIVITIES = ("train", "evaluate", "publish", "vote", "finalize", "aggregate", "confirm", "claim")


def one_round(config: SimConfig) -> dict[str, Any]:
    """Set up a simulation, run one round, and return the per-phase timings and byte counts."""
    events: list[Any] = []
    sim = Simulation(config, Hooks(on_event=events.append))
    try:
        sim.setup()
        report = sim.run_round()
        r = report.round
        totals = {a: sum(o.node.timings.get(r, {}).get(a, 0.0) for o in sim.orgs) for a in ACTIVITIES}
        totals["chain/other"] = max(report.protocol_s - sum(totals.values()), 0.0)
        adapter_bytes = [e.data["bytes"] for e in events if e.kind == "trained"]
        # evaluation work, independent of machine load: held-out blocks scored per peer judgement
        judged = [v["blocks"] for o in sim.orgs for v in o.node.journal.entry(r).votes.values() if v.get("blocks")]
        return {
            "orgs": config.orgs,
            "model": config.model,
            "steps": config.steps,
            "round_s": report.protocol_s,
            "phases_s": totals,
            "overhead_share": 1.0 - totals["train"] / report.protocol_s,
            "protocol_share": 1.0 - (totals["train"] + totals["evaluate"]) / report.protocol_s,
            "accepted": report.accepted,
            "adapter_bytes": max(adapter_bytes),
            "model_bytes": sim.base.num_parameters() * 4,
            "gas_per_org": sum(report.gas.values()) / config.orgs,
            "judgements": len(judged),
            "blocks_per_judgement": sum(judged) / max(len(judged), 1),
            "eval_blocks": config.eval_blocks,
        }
    finally:
        sim.close()


def smollm2_adapter_share() -> dict[str, Any]:
    """Adapter bytes of LoRA r=8 (q_proj, v_proj) on smollm2-135m against the fp32 model's bytes."""
    from codecoop.node import initial_adapter
    from codecoop.training import TrainConfig, load_base

    base = load_base("smollm2-135m", "cpu")
    adapter = initial_adapter(base, TrainConfig(r=8))
    return {"adapter_bytes": len(adapter.to_bytes()), "model_bytes": base.num_parameters() * 4, "measured_in": "adapter size"}


DOC = Path(__file__).resolve().parent.parent / "docs" / "NODE.md"


def docs_block(data: dict[str, Any]) -> str:
    """The Markdown docs/NODE.md shows of a results file (rendered, never typed: ``--render``)."""
    rows = [
        [
            r["orgs"],
            f"{r['round_s']:.1f}",
            *(f"{r['phases_s'][a]:.2f}" for a in (*ACTIVITIES, "chain/other")),
            f"{100 * r['overhead_share']:.1f}%",
            f"{100 * r['protocol_share']:.1f}%",
            f"{r['blocks_per_judgement']:.1f} of {r['eval_blocks']}",
        ]
        for r in data["runs"]
    ]
    goals = {t["name"]: t for t in data["targets"]}
    share = data["smollm2"]

    def verdict(name: str) -> str:
        return "met" if goals[name]["met"] else "**missed**"

    lines = [
        f"From `benchmarks/results/round.json`: {'quick' if data.get('quick') else 'full'} run, commit "
        f"`{(data.get('commit') or 'unknown')[:10]}`{' (with uncommitted changes)' if data.get('dirty') else ''}, "
        f"{data['machine']['cpus']} CPUs (seconds, whole round, all organisations):",
        "",
        markdown_table(["N", "round", *ACTIVITIES, "chain/other", "non-training", "protocol", "blocks per judgement"], rows),
        "",
    ]
    for r in data["runs"]:
        n = r["orgs"]
        lines.append(
            f"- N = {n}: non-training overhead {100 * r['overhead_share']:.1f}% of the round (target 20%: "
            f"{verdict(f'non-training overhead share of a round, N={n}')}), protocol overhead "
            f"{100 * r['protocol_share']:.1f}% (target 20%: "
            f"{verdict(f'protocol overhead share of a round (no training, no evaluation), N={n}')}); "
            f"gas per organisation {r['gas_per_org']:,.0f}."
        )
    name = "bytes published per organisation per round / model size (smollm2-135m, LoRA r=8)"
    lines.append(
        f"- Bytes an organisation publishes per round for LoRA r=8 on smollm2-135m: {share['adapter_bytes']:,} "
        f"({100 * share['share']:.2f}% of the {share['model_bytes']:,}-byte fp32 model, {share['measured_in']}; target 2%: {verdict(name)})."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=3 only, and smollm2 bytes from the adapter size instead of a smollm2 round")
    parser.add_argument("--render", action="store_true", help="only render benchmarks/results/round.json into docs/NODE.md")
    args = parser.parse_args(argv)
    if args.render:
        changed = render_into(DOC, "round", docs_block(json.loads((RESULTS_DIR / "round.json").read_text())))
        print(f"{DOC} {'updated' if changed else 'already up to date'}")
        return 0
    steps = 40
    began = time.perf_counter()
    runs = []
    for n in (3,) if args.quick else (3, 8):
        print(f"N={n}: one round on tiny, {steps} steps per organisation ...", flush=True)
        runs.append(one_round(SimConfig(orgs=n, rounds=1, steps=steps, baselines=False, max_files_per_org=60)))
    if args.quick:
        share = smollm2_adapter_share()
    else:
        print("smollm2-135m: one round, 3 organisations, 2 steps each ...", flush=True)
        run = one_round(
            SimConfig(orgs=3, rounds=1, model="smollm2-135m", steps=2, batch_size=4, eval_blocks=4, baselines=False, max_files_per_org=30)
        )
        share = {"adapter_bytes": run["adapter_bytes"], "model_bytes": run["model_bytes"], "measured_in": "one round"}
    share["share"] = share["adapter_bytes"] / share["model_bytes"]

    headers = ["N", "round s", *ACTIVITIES, "chain/other", "non-training", "protocol", "gas/org", "blocks/judgement"]
    rows = [
        [
            r["orgs"],
            r["round_s"],
            *(r["phases_s"][a] for a in ACTIVITIES),
            r["phases_s"]["chain/other"],
            f"{100 * r['overhead_share']:.1f}%",
            f"{100 * r['protocol_share']:.1f}%",
            round(r["gas_per_org"]),
            f"{r['blocks_per_judgement']:.1f} of {r['eval_blocks']}",
        ]
        for r in runs
    ]
    print_table(headers, rows)
    print(
        f"smollm2-135m LoRA r=8: {share['adapter_bytes']:,} bytes per organisation per round = "
        f"{100 * share['share']:.2f}% of the {share['model_bytes']:,}-byte model ({share['measured_in']})"
    )
    targets = [target(f"non-training overhead share of a round, N={r['orgs']}", round(r["overhead_share"], 4), 0.20, "<=") for r in runs]
    targets += [
        target(f"protocol overhead share of a round (no training, no evaluation), N={r['orgs']}", round(r["protocol_share"], 4), 0.20, "<=")
        for r in runs
    ]
    targets.append(
        target("bytes published per organisation per round / model size (smollm2-135m, LoRA r=8)", round(share["share"], 5), 0.02, "<=")
    )
    print_targets(targets)
    path = write_results(
        "round",
        {"quick": args.quick, "machine": machine(), "runs": runs, "smollm2": share, "wall_s": round(time.perf_counter() - began, 1)},
        targets,
    )
    print(f"results: {path}")
    if not args.quick:
        render_into(DOC, "round", docs_block(json.loads(path.read_text())))
    return 0 if all(t["met"] for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
