"""Web dashboard: first load and per-page server time for histories of 100 and 1,000 rounds with 8 members.

Each history is built the way ``benchmarks/audit.py`` builds its own (one growing embedded chain,
:class:`codecoop.audit.synthetic.SyntheticFederation`: real adapters in a LocalStore, real
aggregation, claims, a harmful update every seventh round). At each size a fresh
:class:`codecoop.ui.dashboard.Dashboard` (read-only: no signer) folds the whole history once
(``catch_up``: the "first load"), then every page is requested through Starlette's TestClient: one
cold request (it builds the page's cached data), then N repeated ones (10 with ``--quick``, 50
otherwise). One empty block is mined before every other repeated request, outside the timed window,
so half of the repeated requests fold a new block and rebuild the page's data (the page cache is
per head block) and half are served from the cache: the figures are the server's real cost per
request while the chain moves, not cache hits only. Every response must be 200.

Figures per size: first-load time, the process's resident memory after all requests, and per page
the cold time and the p50 and p95 of the repeated requests (also the median of the requests that
followed a new block and of those that did not). Target: the worst page's p95 at the largest size
is at most 300 ms (the issue's target is at 1,000 rounds: the full run; ``--quick`` builds 20 rounds,
``--rounds N ...`` any sizes). The results record the sizes measured.
Results: ``benchmarks/results/ui.json``.

Usage: ``python benchmarks/ui.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS_DIR,
    machine,
    markdown_table,
    print_table,
    print_targets,
    render_into,
    target,
    write_results,
)

from codecoop.audit.synthetic import SyntheticFederation  # noqa: E402
from codecoop.chain.devtools import DevFederation  # noqa: E402
from codecoop.chain.params import FederationParams  # noqa: E402
from codecoop.storage import LocalStore  # noqa: E402

MEMBERS = 8
#: Windows that fit one transaction per member per phase; epochs of about ten rounds (as in benchmarks/audit.py).
PARAMS = FederationParams(submit_window=12, commit_window=10, reveal_window=10, confirm_window=12, epoch_length=500)
#: The worst page's p95 after the first load, in ms.
P95_TARGET_MS = 300.0
#: History size of ``--quick`` (about a minute to build).
QUICK_ROUNDS = 20


def pages(last_round: int) -> list[str]:
    return ["/", "/rounds", "/rounds/1", f"/rounds/{last_round}", "/members", "/proposals", "/models", "/audit"]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between the closest ranks."""
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def measure(deployment: Any, store: Any, last_round: int, repeats: int) -> dict[str, Any]:
    """First load, then every page cold and ``repeats`` times (a new block before every other request)."""
    import psutil
    from starlette.testclient import TestClient

    from codecoop.ui.app import create_app
    from codecoop.ui.dashboard import Dashboard

    db = Dashboard(deployment, store=store, signer=None)
    started = time.perf_counter()
    db.catch_up()
    first_load_s = time.perf_counter() - started
    head_at_load, events_at_load = db.head, db.ledger.events
    per_page: list[dict[str, Any]] = []
    with TestClient(create_app(db), base_url="http://127.0.0.1") as client:

        def get(path: str) -> float:
            t0 = time.perf_counter()
            response = client.get(path)
            elapsed = 1e3 * (time.perf_counter() - t0)
            assert response.status_code == 200, (path, response.status_code, response.text[:500])
            return elapsed

        for path in pages(last_round):
            cold_ms = get(path)
            after_block, cached = [], []
            for i in range(repeats):
                if i % 2 == 0:
                    deployment.chain.mine(1)  # not timed: the request then folds the block and rebuilds the page's data
                    after_block.append(get(path))
                else:
                    cached.append(get(path))
            timings = after_block + cached
            per_page.append(
                {
                    "page": path,
                    "cold_ms": cold_ms,
                    "p50_ms": percentile(timings, 50),
                    "p95_ms": percentile(timings, 95),
                    "max_ms": max(timings),
                    "median_after_new_block_ms": statistics.median(after_block),
                    "median_cached_ms": statistics.median(cached),
                    "requests": len(timings),
                }
            )
    rss_mib = psutil.Process().memory_info().rss / 2**20
    return {
        "first_load_s": first_load_s,
        "blocks_at_first_load": head_at_load,
        "events_at_first_load": events_at_load,
        "rss_mib_after_requests": rss_mib,
        "pages": per_page,
    }


DOC = Path(__file__).resolve().parents[1] / "docs" / "UI.md"


def docs_block(data: dict[str, Any]) -> str:
    """The Markdown that docs/UI.md shows of a results file (rendered, never typed: ``--render``)."""
    results = data["results"]
    largest = results[-1]
    run = "quick run" if data.get("quick") else "full run"
    sizes = ", ".join(f"{r['rounds']:,}" for r in results)
    lines = [
        f"From `benchmarks/results/ui.json`: {run} at {sizes} rounds x {largest['members']} members, commit "
        f"`{(data.get('commit') or 'unknown')[:10]}`{' (with uncommitted changes)' if data.get('dirty') else ''}, "
        f"{data['machine']['cpus']} CPUs.",
        "",
        markdown_table(
            ["rounds", "blocks", "events", "first load (s)", "server RSS (MiB)", "worst p95 (ms)", "worst page"],
            [
                [
                    r["rounds"],
                    r["blocks_at_first_load"],
                    r["events_at_first_load"],
                    round(r["first_load_s"], 2),
                    round(r["rss_mib_after_requests"]),
                    round(max(p["p95_ms"] for p in r["pages"]), 1),
                    f"`{max(r['pages'], key=lambda p: p['p95_ms'])['page']}`",
                ]
                for r in results
            ],
        ),  # fmt: skip
        "",
        f"Per page at {largest['rounds']:,} rounds ({largest['repeats']} repeated requests after one cold one; a new "
        "block before every other one):",
        "",
        markdown_table(
            ["page", "cold (ms)", "p50 (ms)", "p95 (ms)", "median after a new block (ms)", "median cached (ms)"],
            [
                [
                    f"`{p['page']}`",
                    round(p["cold_ms"], 1),
                    round(p["p50_ms"], 1),
                    round(p["p95_ms"], 1),
                    round(p["median_after_new_block_ms"], 1),
                    round(p["median_cached_ms"], 1),
                ]
                for p in largest["pages"]
            ],
        ),  # fmt: skip
        "",
        *[f"- {'met' if t['met'] else 'missed'}: {t['name']}: {t['value']:.1f} {t['op']} {t['target']:g}" for t in data["targets"]],
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROUNDS} rounds only, 10 repeated requests per page")
    parser.add_argument(
        "--rounds", type=int, nargs="+", metavar="N", help="history sizes to measure (default 100 1000; building takes about 3 s a round)"
    )
    parser.add_argument("--render", action="store_true", help="only render benchmarks/results/ui.json into docs/UI.md")
    args = parser.parse_args()
    if args.render:
        changed = render_into(DOC, "ui", docs_block(json.loads((RESULTS_DIR / "ui.json").read_text())))
        print(f"{DOC} {'updated' if changed else 'already up to date'}")
        return
    sizes = sorted(args.rounds or ([QUICK_ROUNDS] if args.quick else [100, 1_000]))
    repeats = 10 if args.quick else 50
    wall = time.perf_counter()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(tmp, durable=False)
        sim = SyntheticFederation(DevFederation.create(MEMBERS, PARAMS), store, seed=1)
        sim.fed.chain.preflight = False  # building the history is not what is timed; its transactions succeed
        built, build_s, last_round = 0, 0.0, 0
        for size in sizes:
            started = time.perf_counter()
            while built < size:
                # every seventh round carries a harmful update, so rejections and honest rejecting votes occur
                last_round = sim.run_round(harmful=[built % MEMBERS] if built % 7 == 0 else ()).round
                built += 1
            build_s += time.perf_counter() - started
            print(f"{size} rounds built in {build_s:.0f} s", flush=True)
            result = {"rounds": size, "members": MEMBERS, "repeats": repeats, "build_s": build_s}
            result.update(measure(sim.fed.deployment, store, last_round, repeats))
            results.append(result)
    print()
    print_table(
        ["rounds", "blocks", "events", "first load s", "RSS MiB"],
        [
            [r["rounds"], r["blocks_at_first_load"], r["events_at_first_load"], r["first_load_s"], r["rss_mib_after_requests"]]
            for r in results
        ],
    )
    print()
    print(f"per page: 1 cold request, then {repeats} repeated; a new block is mined before every other repeated request")
    print("(so half of them fold it and rebuild the page's data, half hit the page cache)")
    print_table(
        ["rounds", "page", "cold ms", "p50 ms", "p95 ms", "median new block ms", "median cached ms"],
        [
            [r["rounds"], p["page"], p["cold_ms"], p["p50_ms"], p["p95_ms"], p["median_after_new_block_ms"], p["median_cached_ms"]]
            for r in results
            for p in r["pages"]
        ],
    )
    largest = results[-1]
    worst = max(largest["pages"], key=lambda p: p["p95_ms"])
    targets = [
        target(
            f"worst page's p95 at {largest['rounds']:,} rounds x {MEMBERS} members after the first load (ms; {worst['page']})",
            worst["p95_ms"],
            P95_TARGET_MS,
            "<=",
        )
    ]
    figures = {
        **{f"first_load_s_at_{r['rounds']}_rounds": r["first_load_s"] for r in results},
        **{f"rss_mib_at_{r['rounds']}_rounds": r["rss_mib_after_requests"] for r in results},
        "worst_page_at_largest_size": worst["page"],
    }
    wall_s = time.perf_counter() - wall
    print()
    print_targets(targets)
    path = write_results(
        "ui", {"quick": args.quick, "sizes": sizes, "machine": machine(), "wall_s": wall_s, "figures": figures, "results": results}, targets
    )
    print(f"written to {path} ({wall_s:.0f} s in all)")


if __name__ == "__main__":
    main()
