"""Gas per operation of the contract suite on the embedded eth-tester chain.

Deploys the suite, runs rounds with 4 members (every member submits, votes on the others' updates,
confirms and claims), and prints each operation's gas beside its floor: 21,000 for the transaction
plus 22,100 for every storage slot it must write from zero (counted from the storage layout, see
below), with the ratio. Then runs federations of 4, 16 and 50 members and checks that no operation
grows faster than linearly in the number of members.

Figures are taken in a second round (a federation's steady state: members hold tokens and vote
checkpoints, the epoch's reservation slot exists); the first round's are printed beside them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, print_table, print_targets, target, write_results  # noqa: E402

from codecoop.chain.devtools import DevFederation  # noqa: E402

BASE, SLOT = 21_000, 22_100
#: New storage slots each operation writes in the steady state, from the contracts' layout.
NEW_SLOTS = {
    "submitUpdate": 3,  # the update's record, its digest, the member's round slot
    "commitVotes": 1,  # the commitment
    "revealVotes": 0,  # tallies and the member's round slot exist already
    "finalize": 0,  # round slots exist; the epoch's reservation slot exists after the first round
    "confirmAggregate": 1,  # the completing confirmation writes the aggregate's digest
    "claim": 2,  # a new total-supply checkpoint and a new delegate checkpoint
}
TARGETS = {
    "submitUpdate": 120_000,
    "commitVotes": 70_000,
    "revealVotes": 150_000,
    "finalize": 400_000,
    "confirmAggregate": 90_000,
    "claim": 130_000,
}
#: Gas to deploy the six contracts and wire them (checked by tests/chain/test_gas_targets.py too).
DEPLOY_TARGET = 15_000_000


def run_sizes(sizes: list[int], rounds: int) -> dict[int, dict[str, int]]:
    """Max gas per operation in the last of ``rounds`` rounds, per federation size."""
    out = {}
    for n in sizes:
        t0 = time.perf_counter()
        fed = DevFederation.create(n)
        for _ in range(rounds):
            rec = fed.run_round()
        out[n] = {op: max(g) for op, g in rec.gas.items()}
        print(f"  {n} members: {rounds} round(s) in {time.perf_counter() - t0:.1f} s")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round per federation size (under a minute)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    fed = DevFederation.create(4)
    deploy_gas = sum(fed.deployment.record.gas_used.values())
    first = fed.run_round(tag="first")
    steady = fed.run_round(tag="steady")
    rows, targets = [], []
    for op, goal in TARGETS.items():
        value = max(steady.gas[op])
        floor = BASE + SLOT * NEW_SLOTS[op]
        rows.append([op, f"{max(first.gas[op]):,}", f"{value:,}", f"{floor:,}", f"{value / floor:.2f}", f"<= {goal:,}"])
        label = "revealVotes (3 votes)" if op == "revealVotes" else "finalize (4 updates)" if op == "finalize" else op
        targets.append(target(f"{label} gas", value, goal, "<="))
    targets.append(target("deploy whole suite gas", deploy_gas, DEPLOY_TARGET, "<="))
    print("gas per operation, 4 members")
    print_table(
        ["operation", "first round", "steady round", "floor", "ratio", "target"],
        rows + [["deploy (6 contracts + wiring)", f"{deploy_gas:,}", "", "", "", f"<= {DEPLOY_TARGET:,}"]],
    )

    sizes = [4, 16, 50]
    per_size = run_sizes(sizes, rounds=1 if args.quick else 2)
    rows, worst = [], 0.0
    for op in TARGETS:
        g = [per_size[n][op] for n in sizes]
        slope = (g[1] - g[0]) / (sizes[1] - sizes[0])
        predicted = g[1] + slope * (sizes[2] - sizes[1])
        excess = g[2] / predicted if predicted > 0 else 1.0
        worst = max(worst, excess)
        rows.append([op, *(f"{x:,}" for x in g), f"{slope:,.0f}", f"{predicted:,.0f}", f"{excess:.3f}"])
    print("\ngas per transaction by federation size (linear prediction from 4 and 16 members)")
    print_table(
        ["operation", "4", "16", "50", "gas per extra member", "linear at 50", "actual / linear"],
        rows,
    )
    targets.append(target("worst actual/linear gas at 50 members", round(worst, 4), 1.05, "<="))
    path = write_results(
        "gas",
        {
            "machine": machine(),
            "quick": args.quick,
            "seconds": round(time.perf_counter() - t0, 1),
            "first_round": {op: max(g) for op, g in first.gas.items()},
            "steady_round": {op: max(g) for op, g in steady.gas.items()},
            "floors": {op: BASE + SLOT * k for op, k in NEW_SLOTS.items()},
            "deploy": fed.deployment.record.gas_used,
            "by_members": {str(n): v for n, v in per_size.items()},
        },
        targets,
    )
    print("\ntargets")
    print_targets(targets)
    print(f"results written to {path}")
    return 0 if all(t["met"] for t in targets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
