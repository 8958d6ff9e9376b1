"""Aggregation speed and memory: codecoop's strategies beside Flower's functions, same inputs.

``python benchmarks/aggregation.py [--quick]``

For n in {4, 16} adapters of {1M, 10M, 100M} parameters (``--quick``: 1M and 10M), LoRA-shaped
(rank-16 pairs on width 4096, float32), it times FedAvg, FedMedian, FedTrimmedAvg and Krum from
``codecoop.aggregation`` (validation included) and ``aggregate``, ``aggregate_median``,
``aggregate_trimmed_avg`` and ``aggregate_krum`` from ``flwr.server.strategy.aggregate``, checks
that both give the same result within a tolerance, and measures a same-size ``torch.clone`` of
the inputs as the memory-copy baseline. Peak memory is the resident-set increase during a call.

Targets, at the largest size run: ours/flwr time <= 0.5 for fedavg and fedmedian; fedavg input
throughput >= 50% of the clone's; every comparison within its tolerance.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil
import torch
from _common import machine, peak_rss, print_table, print_targets, target, write_results

from codecoop.aggregation import Update, get_strategy

RANK, WIDTH = 16, 4096
PAIR = 2 * RANK * WIDTH  # parameters in one lora_A/lora_B pair
BETA = 0.25
KRUM_F = 1
#: Largest absolute difference accepted between ours and Flower's result (float32 data of unit scale).
TOLERANCE = {"fedavg": 1e-5, "fedmedian": 1e-6, "fedtrimmedavg": 1e-5, "krum": 0.0}


def make_updates(n: int, params: int, seed: int) -> list[Update]:
    """``n`` adapters of about ``params`` parameters, as rank-16 LoRA pairs."""
    g = torch.Generator().manual_seed(seed)
    pairs = max(1, round(params / PAIR))
    updates = []
    for i in range(n):
        tensors: dict[str, torch.Tensor] = {}
        for p in range(pairs):
            # Uniform values: generated several times faster than normal ones, and the timings of
            # these strategies do not depend on the distribution.
            tensors[f"layers.{p}.lora_A.weight"] = torch.empty(RANK, WIDTH).uniform_(-1.0, 1.0, generator=g)
            tensors[f"layers.{p}.lora_B.weight"] = torch.empty(WIDTH, RANK).uniform_(-1.0, 1.0, generator=g)
        updates.append(Update(cid=f"bafy{i:04d}", tensors=tensors, num_samples=100 + 37 * i))
    return updates


def timed(fn: Callable[[], Any]) -> tuple[float, int, Any]:
    """Wall time, peak-RSS increase and result of one call."""
    gc.collect()
    with peak_rss() as p:
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
    return elapsed, p.bytes, result


def best_of(fns: dict[str, Callable[[], Any]], reps: int) -> dict[str, tuple[float, int, Any]]:
    """Best time, largest peak and last result of each function, the calls interleaved so that a
    burst of load from other processes hits both sides of a comparison alike."""
    best = {key: float("inf") for key in fns}
    peak = {key: 0 for key in fns}
    last: dict[str, Any] = {}
    for _ in range(reps):
        for key, fn in fns.items():
            last.pop(key, None)  # free the previous result before measuring the next call's memory
            t, p, last[key] = timed(fn)
            best[key], peak[key] = min(best[key], t), max(peak[key], p)
    return {key: (best[key], peak[key], last[key]) for key in fns}


def max_abs_diff(ours: dict[str, torch.Tensor], names: list[str], theirs: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(ours[k].numpy().astype(np.float64) - t.astype(np.float64)))) for k, t in zip(names, theirs))


def run_size(n: int, params: int, reps: int, rows: list[dict[str, Any]]) -> None:
    from flwr.server.strategy.aggregate import aggregate, aggregate_krum, aggregate_median, aggregate_trimmed_avg

    updates = make_updates(n, params, seed=n * 1000 + params % 997)
    names = sorted(updates[0].tensors)
    total = sum(t.numel() for t in updates[0].tensors.values())
    input_bytes = n * total * 4
    # Flower's functions take lists of numpy arrays; these are views of the same memory, made untimed.
    results = [([u.tensors[k].numpy() for k in names], u.num_samples) for u in updates]

    def clone() -> list[torch.Tensor]:
        return [t.clone() for u in updates for t in u.tensors.values()]

    def clone_one_thread() -> list[torch.Tensor]:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return clone()
        finally:
            torch.set_num_threads(threads)

    # The baseline is the faster of a threaded and a one-thread copy, whichever the load favours.
    clones = best_of({"threads": clone, "one": clone_one_thread}, reps)
    t_clone, peak_clone, _ = min(clones.values(), key=lambda c: c[0])
    del clones
    rows.append(
        {
            "n": n,
            "params": total,
            "op": "torch_clone",
            "ours_s": t_clone,
            "ours_peak_bytes": peak_clone,
            "ours_gbps": input_bytes / t_clone / 1e9,
        }
    )
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any], float]] = [
        ("fedavg", lambda: get_strategy("fedavg").aggregate(updates), lambda: aggregate(results), 2.0 * input_bytes),
        ("fedmedian", lambda: get_strategy("fedmedian").aggregate(updates), lambda: aggregate_median(results), 2.0 * input_bytes),
        (
            "fedtrimmedavg",
            lambda: get_strategy("fedtrimmedavg", beta=BETA).aggregate(updates),
            lambda: aggregate_trimmed_avg(results, BETA),
            3.0 * input_bytes,
        ),
        (
            "krum",
            lambda: get_strategy("krum", f=KRUM_F).aggregate(updates),
            lambda: aggregate_krum(results, num_malicious=KRUM_F, to_keep=0),
            2.5 * input_bytes,
        ),
    ]
    for op, ours_fn, flwr_fn, flwr_memory in cases:
        # Flower stacks or flattens every adapter; skip it where that would not fit in free memory.
        skip = flwr_memory > 0.7 * psutil.virtual_memory().available
        # The two targeted comparisons get at least three interleaved rounds at every size.
        rounds = max(reps, 3) if op in ("fedavg", "fedmedian") else reps
        timings = best_of({"ours": ours_fn} if skip else {"ours": ours_fn, "flwr": flwr_fn}, rounds)
        t_ours, peak_ours, agg = timings["ours"]
        row: dict[str, Any] = {
            "n": n,
            "params": total,
            "op": op,
            "ours_s": t_ours,
            "ours_peak_bytes": peak_ours,
            "ours_gbps": input_bytes / t_ours / 1e9,
        }
        if skip:
            row["flwr_skipped"] = f"needs about {flwr_memory / 2**30:.1f} GiB"
        else:
            t_flwr, peak_flwr, theirs = timings.pop("flwr")
            diff = max_abs_diff(dict(agg.tensors), names, theirs)
            row |= {
                "flwr_s": t_flwr,
                "flwr_peak_bytes": peak_flwr,
                "ratio": t_ours / t_flwr,
                "max_abs_diff": diff,
                "within_tolerance": diff <= TOLERANCE[op],
            }
            del theirs
        del timings
        del agg
        rows.append(row)
        print(
            f"  n={n:>2} params={total / 1e6:6.1f}M {op:<14} ours {t_ours:8.3f}s"
            + (f"  flwr {row['flwr_s']:8.3f}s  ratio {row['ratio']:.3f}" if "flwr_s" in row else "  flwr skipped"),
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M and 10M parameters only (under a minute)")
    args = parser.parse_args(argv)
    sizes = [1_000_000, 10_000_000] if args.quick else [1_000_000, 10_000_000, 100_000_000]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for params in sizes:
        for n in (4, 16):
            # Repeat small cases for a stable minimum; one call of the big ones takes long enough.
            run_size(n, params, reps=3 if params <= 1_000_000 else 1, rows=rows)
            gc.collect()

    largest = max((r["params"] * r["n"], r["params"], r["n"]) for r in rows)
    at_largest = {r["op"]: r for r in rows if (r["params"] * r["n"], r["params"], r["n"]) == largest}
    label = f"n={largest[2]}, {largest[1] / 1e6:.1f}M params"
    targets = []
    for op in ("fedavg", "fedmedian"):
        if "ratio" in at_largest[op]:
            targets.append(target(f"{op} ours/flwr time ({label})", at_largest[op]["ratio"], 0.5, "<="))
    targets.append(
        target(
            f"fedavg throughput / torch clone throughput ({label})",
            at_largest["torch_clone"]["ours_s"] / at_largest["fedavg"]["ours_s"],
            0.5,
            ">=",
        )
    )
    for op, tol in TOLERANCE.items():
        diffs = [r["max_abs_diff"] for r in rows if r["op"] == op and "max_abs_diff" in r]
        if diffs:
            targets.append(target(f"{op} max |ours - flwr| over all sizes", max(diffs), tol, "<="))

    headers = ["n", "params", "op", "ours s", "flwr s", "ours/flwr", "ours GB/s", "ours peak MiB", "flwr peak MiB", "max|diff|"]
    print()
    print_table(
        headers,
        [
            [
                r["n"],
                f"{r['params'] / 1e6:.1f}M",
                r["op"],
                r["ours_s"],
                r.get("flwr_s", r.get("flwr_skipped")),
                r.get("ratio"),
                r["ours_gbps"],
                r["ours_peak_bytes"] / 2**20,
                r["flwr_peak_bytes"] / 2**20 if "flwr_peak_bytes" in r else None,
                r.get("max_abs_diff"),
            ]
            for r in rows
        ],
    )
    import flwr

    payload = {
        "quick": args.quick,
        "wall_s": time.perf_counter() - started,
        "machine": machine()
        | {"torch": torch.__version__, "torch_threads": torch.get_num_threads(), "numpy": np.__version__, "flwr": flwr.__version__},
        "layout": {"rank": RANK, "width": WIDTH, "dtype": "float32", "trimmed_beta": BETA, "krum_f": KRUM_F},
        "runs": rows,
    }
    path = write_results("aggregation", payload, targets)
    print(f"\ntargets ({label}):")
    print_targets(targets)
    print(f"\nwrote {path} in {payload['wall_s']:.1f} s")
    return 0 if all(t["met"] for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
