"""The README's main job, measured: ``codecoop sim`` with every default, against each organisation alone.

``python benchmarks/sim.py [--quick] [--render]``

Runs the simulation the README's first command runs (3 organisations, 3 rounds, ``fedavg`` on
``tiny``, 40 local steps, single-organisation baselines) and writes its report to
``benchmarks/results/sim.json``; the table in docs/NODE.md is rendered from it. Every loss is the
global *test* loss: each organisation's test files, which no node trains on, judges with or decides
to submit by. The validation loss (the files the nodes judged and selected with) is shown beside it.

Targets:
- the final global model's test loss below version 0's (ratio <= 1);
- the final global model's test loss at most that of the best organisation training alone for the
  same steps (ratio <= 1): what a member gains by joining.

``--quick`` runs 2 rounds of 10 steps (about a minute here) and checks both targets on them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR, machine, markdown_table, print_table, print_targets, render_into, target, write_results  # noqa: E402

from codecoop.sim import Hooks, SimConfig, Simulation  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "NODE.md"


def docs_block(data: dict) -> str:
    """The Markdown docs/NODE.md shows of a results file (rendered, never typed: ``--render``)."""
    report, names = data["report"], [o["name"] for o in data["report"]["orgs"]]
    rows = [
        [
            "0",
            "version 0",
            "",
            f"{report['initial_validation_loss']:.4f}",
            f"{report['initial_loss']:.4f}",
            f"{report['initial_ppl']:.0f}",
            "",
            "",
        ]
    ]
    beaten = []
    for r in report["rounds"]:
        alone = r["baseline_loss"]
        rows.append(
            [
                str(r["round"]),
                r["outcome"],
                f"{r['accepted']} / {r['rejected']}",
                f"{r['validation_loss']:.4f}",
                f"{r['global_loss']:.4f}",
                f"{r['global_ppl']:.0f}",
                " / ".join(f"{alone[n]:.4f}" for n in names if n in alone),
                " / ".join(f"{r['minted'].get(n, 0.0):.0f}" for n in names),
            ]
        )
        if alone:
            beaten.append((r["round"], r["global_loss"] < min(alone.values())))
    orgs = report["orgs"]
    files = [o["train_files"] for o in orgs]
    tokens = [o["train_tokens"] for o in orgs]
    better = [r for r, b in beaten if b]
    worse = [r for r, b in beaten if not b]
    if not beaten:
        verdict = "No baselines were trained in this run."
    elif not worse:
        verdict = "In every round the federated model's test loss is below that of every organisation training alone."
    elif not better:
        verdict = "In no round is the federated model's test loss below that of every organisation training alone."
    else:
        verdict = (
            f"The federated model's test loss is below that of every organisation training alone in round(s) "
            f"{', '.join(map(str, better))}, and not in round(s) {', '.join(map(str, worse))}."
        )
    goals = {t["name"]: t for t in data["targets"]}
    gain = goals["final test loss / best organisation alone"]
    improved = goals["final test loss / version 0"]
    s = report["settings"]
    return "\n".join(
        [
            f"From `benchmarks/results/sim.json`: {'quick' if data.get('quick') else 'full'} run of `codecoop sim` "
            f"({s['orgs']} organisations, {s['rounds']} rounds, `{s['strategy']}` on `{s['model']}`, {s['steps']} steps a "
            f"round), commit `{(data.get('commit') or 'unknown')[:10]}`{' (with uncommitted changes)' if data.get('dirty') else ''}, "
            f"{data['machine']['cpus']} CPUs: {data['wall_s']:.0f} s wall time with the baselines. Each organisation had "
            f"{min(files)}-{max(files)} training files ({min(tokens):,}-{max(tokens):,} training tokens), "
            f"{sum(o['validation_files'] for o in orgs)} validation and {sum(o['test_files'] for o in orgs)} test files in all.",
            "",
            markdown_table(
                [
                    "round",
                    "outcome",
                    "accepted / rejected",
                    "validation loss",
                    "test loss",
                    "test ppl",
                    "each organisation alone (test loss)",
                    "tokens minted",
                ],
                rows,
            ),  # fmt: skip
            "",
            f"{verdict} Final test loss / version 0's: {improved['value']:.4f} (target <= 1: "
            f"{'met' if improved['met'] else 'missed'}); / the best organisation alone: {gain['value']:.4f} "
            f"(target <= 1: {'met' if gain['met'] else 'missed'}).",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 10 steps (about a minute)")
    parser.add_argument("--render", action="store_true", help="only render benchmarks/results/sim.json into docs/NODE.md")
    args = parser.parse_args()
    if args.render:
        changed = render_into(DOC, "sim", docs_block(json.loads((RESULTS_DIR / "sim.json").read_text())))
        print(f"{DOC} {'updated' if changed else 'already up to date'}")
        return 0
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="codecoop-bench-sim-") as work:
        overrides = {"rounds": 2, "steps": 10} if args.quick else {}
        sim = Simulation(SimConfig(workdir=work, **overrides), Hooks(log=lambda m: print(f"  {m}", flush=True)))
        try:
            report = sim.run()
        finally:
            sim.close()
    wall = time.perf_counter() - began
    names = [o.name for o in report.orgs]
    rows = [[0, "version 0", f"{report.initial_validation_loss:.4f}", f"{report.initial_loss:.4f}", "", ""]]
    for r in report.rounds:
        rows.append([r.round, r.outcome, f"{r.validation_loss:.4f}", f"{r.global_loss:.4f}", f"{r.accepted}/{r.rejected}",
                     " / ".join(f"{r.baseline_loss[n]:.4f}" for n in names if n in r.baseline_loss)])  # fmt: skip
    print_table(["round", "outcome", "validation loss", "test loss", "acc/rej", "alone (test loss)"], rows)
    last = report.rounds[-1]
    best_alone = min(last.baseline_loss.values()) if last.baseline_loss else math.nan
    targets = [
        target("final test loss / version 0", round(report.final_loss / report.initial_loss, 6), 1.0, "<="),
        target("final test loss / best organisation alone", round(report.final_loss / best_alone, 6), 1.0, "<="),
    ]
    path = write_results("sim", {"machine": machine(), "quick": args.quick, "wall_s": round(wall, 1), "report": report.to_json()}, targets)
    print("\ntargets")
    print_targets(targets)
    print(f"results written to {path}")
    if not args.quick:
        render_into(DOC, "sim", docs_block(json.loads(path.read_text())))
    return 0 if all(t["met"] for t in targets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
