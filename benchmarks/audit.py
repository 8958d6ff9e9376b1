"""Ledger-audit time for histories of 10, 100 and 1,000 rounds with 8 members on the embedded chain.

Each history is built by :class:`codecoop.audit.synthetic.SyntheticFederation` (real adapters in a
LocalStore, real aggregation, claims), growing one chain: the audit is timed at 10 rounds, again at
100, again at 1,000 (not with ``--quick``). Two figures per size: the audit without recomputation
(event rebuild and every chain check; no store) and with it (every accepted update fetched and
verified, every aggregate recomputed). Target: rebuild and checks scale linearly and take at most
30 s for 1,000 rounds. Results: ``benchmarks/results/audit.json``.

Usage: ``python benchmarks/audit.py [--quick]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, print_table, print_targets, target, write_results  # noqa: E402

from codecoop.audit.run import audit_deployment  # noqa: E402
from codecoop.audit.synthetic import SyntheticFederation  # noqa: E402
from codecoop.chain.devtools import DevFederation  # noqa: E402
from codecoop.chain.params import FederationParams  # noqa: E402
from codecoop.storage import LocalStore  # noqa: E402

MEMBERS = 8
#: Windows that fit one transaction per member per phase; epochs of about ten rounds.
PARAMS = FederationParams(submit_window=12, commit_window=10, reveal_window=10, confirm_window=12, epoch_length=500)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 and 100 rounds only")
    args = parser.parse_args()
    sizes = [10, 100] if args.quick else [10, 100, 1_000]
    rows, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(tmp, durable=False)
        sim = SyntheticFederation(DevFederation.create(MEMBERS, PARAMS), store, seed=1)
        sim.fed.chain.preflight = False  # building the history is not what is timed; its transactions succeed
        built, build_s = 0, 0.0
        for size in sizes:
            started = time.perf_counter()
            while built < size:
                # every seventh round carries a harmful update, so rejections and honest rejecting votes occur
                sim.run_round(harmful=[built % MEMBERS] if built % 7 == 0 else ())
                built += 1
            build_s += time.perf_counter() - started
            plain = audit_deployment(sim.fed.deployment)
            full = audit_deployment(sim.fed.deployment, store=store)
            assert plain.clean and full.clean, (plain.findings, full.findings)
            chain_s = plain.timings["rebuild_s"] + plain.timings["checks_s"]
            full_s = sum(full.timings.values())
            result = {
                "rounds": size,
                "members": MEMBERS,
                "blocks": plain.head,
                "events": plain.summary["events"],
                "build_s": build_s,
                "rebuild_s": plain.timings["rebuild_s"],
                "checks_s": plain.timings["checks_s"],
                "without_recompute_s": chain_s,
                "with_recompute_s": full_s,
                "recompute_s": full.timings["storage_and_recompute_s"],
                "ms_per_round_without_recompute": 1e3 * chain_s / size,
            }
            results.append(result)
            rows.append([size, plain.head, plain.summary["events"], chain_s, full_s, result["ms_per_round_without_recompute"]])
            print(f"{size} rounds built in {build_s:.0f} s", flush=True)
    print_table(["rounds", "blocks", "events", "audit s (no recompute)", "audit s (recompute)", "ms/round"], rows)
    per_round = [r["ms_per_round_without_recompute"] for r in results]
    targets = [target("linear: ms per round at the largest size / at 10 rounds", per_round[-1] / per_round[0], 1.5, "<=")]
    if not args.quick:
        targets.append(target("audit without recomputation, 1,000 rounds (s)", results[-1]["without_recompute_s"], 30.0, "<="))
    print_targets(targets)
    path = write_results("audit", {"quick": args.quick, "machine": machine(), "results": results}, targets)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
