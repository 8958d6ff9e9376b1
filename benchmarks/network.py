"""The network between organisations: what each one sends and receives, and how fast updates spread.

    python benchmarks/network.py [--quick]

Measures, in one run:

* **traffic per round**: a one-round ``codecoop sim --transport libp2p`` (tiny, every update
  forced through) for N = 3 and N = 8 organisations; bytes each organisation uploaded (served to
  peers) and downloaded (fetched from peers), from the nodes' own fetch counters;
* **direct-fetch throughput between two processes**: a 50 MB object served by a libp2p host in a
  child process and fetched (verified) by a host in this one, beside a plain read plus sha256 of
  the same bytes from disk in the same run (the floor: what verification itself costs);
* **replication time**: N = 8 node processes, each holding one object the size of a smollm2-135m
  r=8 fp32 adapter (``benchmarks/results/round.json``, else the r=8 size computed here), each
  fetching the 7 others at once through its :class:`~codecoop.node.transport.P2PTransport`; the
  time from "go" (the end of a submit window) until every node holds every update. The 8
  processes share this machine's cores, so on a 2-core machine this is an upper bound of what 8
  machines would take.

Targets: direct fetch >= 20 MB/s; replication at N = 8 <= 2 s. ``--quick`` runs the traffic for
N = 3 only and one fetch repetition (under a minute once tiny is cached). Writes
``benchmarks/results/network.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine, print_table, print_targets, target, write_results  # noqa: E402

MB = 1_000_000
FETCH_SIZE = 50 * MB
#: LoRA r=8 on q_proj and v_proj of smollm2-135m (30 layers, hidden 576, key/value width 192), fp32,
#: used when benchmarks/results/round.json (which measures the real adapter file) is absent.
SMOLLM2_R8_TENSOR_BYTES = 30 * ((8 * 576 + 576 * 8) + (8 * 576 + 192 * 8)) * 4


def _payload(size: int, tag: str) -> bytes:
    return hashlib.shake_256(f"network-{tag}-{size}".encode()).digest(size)


# ---------------------------------------------------------------------- a server in another process
def serve(folder: str) -> None:
    """Child process: serve the store in ``folder`` over libp2p; print the host's address; stop when stdin closes."""
    from eth_account import Account

    from codecoop.p2p import P2PConfig, P2PHost
    from codecoop.storage import LocalStore

    root = Path(folder)
    host = P2PHost(
        P2PConfig(federation="bench-network", identity_path=root / "server.key"), Account.create(), store=LocalStore(root / "store")
    )
    host.start()
    print(json.dumps({"addr": host.addrs[0], "peer": host.peer_id}), flush=True)
    sys.stdin.read()
    host.stop()


def fetch_between_processes(root: Path, repeats: int) -> dict[str, float]:
    from eth_account import Account

    from codecoop.p2p import P2PConfig, P2PHost
    from codecoop.storage import LocalStore, cid_of

    data = _payload(FETCH_SIZE, "fetch")
    cid = LocalStore(root / "server" / "store").put(data)
    plain = root / "plain"
    plain.write_bytes(data)
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(root / "server")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    client = None
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise RuntimeError("the serving process exited before it listened")
        server = json.loads(line)
        client = P2PHost(P2PConfig(federation="bench-network", identity_path=root / "client.key"), Account.create()).start()
        client.connect(server["addr"])

        def fetch() -> None:
            assert cid_of(client.fetch(server["peer"], cid, max_size=FETCH_SIZE)) == cid

        def floor() -> None:
            with open(plain, "rb", buffering=0) as f:
                hashlib.sha256(f.read()).digest()

        return {"p2p_fetch_MBps": _rate(fetch, repeats), "floor_read_sha256_MBps": _rate(floor, repeats)}
    finally:
        if client is not None:
            client.stop()
        _end(child)


def _end(child: subprocess.Popen) -> None:
    """Close the child's stdin (its signal to stop) and wait for it, bounded."""
    if child.stdin is not None:
        child.stdin.close()
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()


def _rate(fn: Any, repeats: int) -> float:
    fn()  # warm-up: connection, page cache
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return FETCH_SIZE / statistics.median(times) / MB


# ---------------------------------------------------------------------- replication at N = 8
def adapter_size() -> tuple[int, str]:
    path = Path(__file__).resolve().parent / "results" / "round.json"
    try:
        return int(json.loads(path.read_text())["smollm2"]["adapter_bytes"]), "benchmarks/results/round.json"
    except (OSError, KeyError, ValueError):
        return SMOLLM2_R8_TENSOR_BYTES, "computed (tensor bytes only)"


def replica_node(folder: str, index: int, size: int) -> None:
    """Child process ``index``: hold one update, print the host's address, read the registry from stdin, then
    (on "go") fetch every other node's update through a P2PTransport and print the seconds it took."""
    from eth_account import Account

    from codecoop.node.transport import P2PTransport
    from codecoop.p2p import P2PConfig, P2PHost
    from codecoop.storage import LocalStore

    root = Path(folder)
    store = LocalStore(root / f"node-{index}")
    store.put(_payload(size, f"update-{index}"))
    host = P2PHost(P2PConfig(federation="bench-replication", identity_path=root / f"node-{index}.key"), Account.create(), store=store)
    host.start()
    print(json.dumps({"peer": host.peer_id, "addrs": host.addrs}), flush=True)
    registry = [tuple(r) for r in json.loads(sys.stdin.readline())]  # (org, peer, addrs, cid)
    for _, _peer, addrs, _ in registry[:index]:  # every node dials the ones before it
        host.connect(addrs[0])
    transport = P2PTransport(host, store, lambda: [(org, peer, tuple(addrs)) for org, peer, addrs, _ in registry])
    print("ready", flush=True)
    sys.stdin.readline()  # "go": the submit window ended
    began = time.perf_counter()
    others = registry[index + 1 :] + registry[:index]  # staggered: not everyone asks node 0 first
    for org, _, _, cid in others:
        transport.fetch(cid, org, max_size=size)
    print(json.dumps({"seconds": time.perf_counter() - began, "bytes": transport.counters.bytes}), flush=True)
    sys.stdin.readline()  # keep serving until every node is done
    host.stop()


def replication(root: Path, n: int, size: int) -> dict[str, float]:
    """``n`` node processes; the time from "go" until the last one holds every other node's update."""
    from codecoop.storage import cid_of

    root.mkdir(parents=True, exist_ok=True)
    cids = [cid_of(_payload(size, f"update-{i}")) for i in range(n)]
    nodes = [
        subprocess.Popen(
            [sys.executable, __file__, "--replica", str(root), str(i), str(size)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for i in range(n)
    ]
    try:

        def line(p: subprocess.Popen) -> str:
            assert p.stdout is not None
            out = p.stdout.readline()
            if not out:
                raise RuntimeError("a replica node exited early (see its stderr above)")
            return out

        def send(p: subprocess.Popen, text: str) -> None:
            assert p.stdin is not None
            p.stdin.write(text + "\n")
            p.stdin.flush()

        hello = [json.loads(line(p)) for p in nodes]
        registry = json.dumps([[f"org-{i}", h["peer"], h["addrs"], cids[i]] for i, h in enumerate(hello)])
        for p in nodes:
            send(p, registry)
        for p in nodes:
            assert line(p).strip() == "ready"
        began = time.perf_counter()
        for p in nodes:
            send(p, "go")
        done = [json.loads(line(p)) for p in nodes]
        elapsed = time.perf_counter() - began
        for p in nodes:
            send(p, "stop")
        moved = sum(d["bytes"] for d in done)
        if moved != n * (n - 1) * size:
            raise RuntimeError(f"{moved:,} bytes moved, expected {n * (n - 1) * size:,}")
        return {
            "seconds": elapsed,
            "slowest_node_seconds": max(d["seconds"] for d in done),
            "bytes_moved": moved,
            "aggregate_MBps": moved / elapsed / MB,
        }
    finally:
        for p in nodes:
            _end(p)


# ---------------------------------------------------------------------- traffic of a real round
def traffic(n: int, root: Path) -> dict[str, Any]:
    from codecoop.sim import SimConfig, Simulation

    config = SimConfig(
        orgs=n,
        rounds=1,
        steps=2,
        eval_blocks=4,
        max_files_per_org=10,
        baselines=False,
        transport="libp2p",
        min_improvement_micro=-(10**9),
        approve_min_delta_micro=-(10**9),
        workdir=str(root / f"sim-{n}"),
    )
    sim = Simulation(config)
    try:
        report = sim.setup()
        rep = sim.run_round()
        down = {name: c["bytes"] for name, c in report.network.items()}
        up = {o.name: sum(row["bytes"] for row in o.node.transport.counters.served.values()) for o in sim.orgs}
        adapter = sim.orgs[0].node.store.get(sim.deployment.rounds.updates(1)[0].cid)
        return {
            "orgs": n,
            "outcome": rep.outcome,
            "adapter_bytes": len(adapter),
            "download_bytes": down,
            "upload_bytes": up,
            "download_mean": statistics.mean(down.values()),
            "upload_mean": statistics.mean(up.values()),
        }
    finally:
        sim.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 3 traffic only, one fetch repetition (under a minute)")
    parser.add_argument("--serve", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--replica", nargs=3, metavar=("FOLDER", "INDEX", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.replica:
        replica_node(args.replica[0], int(args.replica[1]), int(args.replica[2]))
        return
    repeats = 1 if args.quick else 5
    sizes = (3,) if args.quick else (3, 8)
    with tempfile.TemporaryDirectory(prefix="codecoop-bench-network-") as tmp:
        root = Path(tmp)
        fetch = fetch_between_processes(root / "fetch", repeats)
        size, size_source = adapter_size()
        spread = replication(root / "replication", 8, size)
        rounds = [traffic(n, root) for n in sizes]

    print(f"direct fetch of a {FETCH_SIZE // MB} MB object between two processes (median of {repeats}), beside the floor")
    print_table(
        ["operation", "MB/s", "share of floor"],
        [
            ["read + sha256 from disk", fetch["floor_read_sha256_MBps"], 1.0],
            ["libp2p direct fetch", fetch["p2p_fetch_MBps"], fetch["p2p_fetch_MBps"] / fetch["floor_read_sha256_MBps"]],
        ],
    )
    print(f"\nreplication: 8 nodes, one {size:,}-byte update each ({size_source}), every node fetches the other 7")
    print_table(
        ["seconds", "slowest node", "bytes moved", "aggregate MB/s"],
        [[spread["seconds"], spread["slowest_node_seconds"], spread["bytes_moved"], spread["aggregate_MBps"]]],
    )
    print("\ntraffic of one round on tiny over libp2p (bytes per organisation)")
    print_table(
        ["N", "adapter bytes", "download mean", "download max", "upload mean", "upload max"],
        [
            [
                r["orgs"],
                r["adapter_bytes"],
                r["download_mean"],
                max(r["download_bytes"].values()),
                r["upload_mean"],
                max(r["upload_bytes"].values()),
            ]
            for r in rounds
        ],
    )
    targets = [
        target("p2p_direct_fetch_between_processes_MBps", fetch["p2p_fetch_MBps"], 20.0, ">="),
        target("replication_8_nodes_smollm2_r8_seconds", spread["seconds"], 2.0, "<="),
    ]
    print_targets(targets)
    path = write_results(
        "network",
        {
            "quick": args.quick,
            "repeats": repeats,
            "unit": "MB/s (1 MB = 10^6 bytes), seconds, bytes",
            "machine": machine(),
            "fetch": {"object_bytes": FETCH_SIZE, **fetch},
            "replication": {"nodes": 8, "object_bytes": size, "object_size_from": size_source, **spread},
            "traffic": rounds,
        },
        targets,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
