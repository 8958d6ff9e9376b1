"""Transport throughput: LocalStore, IpfsStore and libp2p direct fetch, each beside its floor.

    python benchmarks/transport.py [--quick]

For 2 MB and 50 MB objects it measures, in the same run and on the same bytes:

* the floor: reading the bytes from a plain file and sha256-hashing them, what verification
  itself costs at the least;
* LocalStore put and get (get verifies the CID);
* IpfsStore put and get against the daemon of ``scripts/ipfs-devnet.sh`` (skipped when none runs);
* libp2p direct fetch between two hosts on 127.0.0.1 (verified on arrival).

Targets: LocalStore get >= 50% of the floor's speed; direct fetch >= 20 MB/s. Prints a table and
writes ``benchmarks/results/transport.json``. ``--quick`` takes fewer repetitions (under a minute).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine, print_table, print_targets, target, write_results  # noqa: E402

from codecoop.errors import StorageError  # noqa: E402
from codecoop.storage import LocalStore, cid_of  # noqa: E402

MB = 1_000_000
SIZES = (2 * MB, 50 * MB)
IPFS_API = "/ip4/127.0.0.1/tcp/5001/http"


def _payload(size: int) -> bytes:
    # Incompressible and reproducible: nothing along the way can shortcut on repetition.
    return hashlib.shake_256(f"transport-{size}".encode()).digest(size)


def _rate(size: int, fn: Callable[[], Any], repeats: int) -> float:
    """Median throughput of ``fn`` over ``repeats`` runs after one warm-up run, in MB/s."""
    fn()  # page cache, connections and allocator warm for every contender alike
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return size / statistics.median(times) / MB


def _floor(path: Path) -> None:
    with open(path, "rb", buffering=0) as f:
        hashlib.sha256(f.read()).digest()


def _ipfs_store() -> Any | None:
    try:
        from codecoop.storage import IpfsStore

        store = IpfsStore(IPFS_API, timeout=60)
        store.version()
    except StorageError:
        return None
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (under a minute)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7

    rows: list[list[Any]] = []
    results: dict[str, dict[str, float | None]] = {}
    ipfs = _ipfs_store()
    with tempfile.TemporaryDirectory(prefix="codecoop-bench-") as tmp:
        root = Path(tmp)
        local = LocalStore(root / "store")
        p2p = _P2PPair(root, local)
        try:
            for size in SIZES:
                data = _payload(size)
                plain = root / f"plain-{size}"
                plain.write_bytes(data)
                cid = cid_of(data)
                figures: dict[str, float | None] = {}
                figures["floor_read_sha256"] = _rate(size, lambda: _floor(plain), repeats)  # noqa: B023 (called before the loop moves on)
                figures["localstore_put"] = _rate(size, lambda: local.put(data), repeats)  # noqa: B023 (called before the loop moves on)
                figures["localstore_get"] = _rate(size, lambda: local.get(cid), repeats)  # noqa: B023 (called before the loop moves on)
                if ipfs is not None:
                    figures["ipfsstore_put"] = _rate(size, lambda: ipfs.put(data), repeats)  # noqa: B023 (called before the loop moves on)
                    figures["ipfsstore_get"] = _rate(size, lambda: ipfs.get(cid), repeats)  # noqa: B023 (called before the loop moves on)
                else:
                    figures["ipfsstore_put"] = figures["ipfsstore_get"] = None
                figures["p2p_fetch"] = _rate(size, lambda: p2p.fetch(cid), repeats)  # noqa: B023 (called before the loop moves on)
                results[f"{size // MB}MB"] = figures
                floor = figures["floor_read_sha256"]
                for name, value in figures.items():
                    share = None if value is None or floor is None else value / floor
                    rows.append([f"{size // MB} MB", name, value, share])
        finally:
            p2p.stop()

    print(f"transport throughput (MB/s, median of {repeats}); share = speed / floor speed")
    print_table(["object", "operation", "MB/s", "share of floor"], rows)
    if ipfs is None:
        print(f"  IpfsStore skipped: no daemon at {IPFS_API} (scripts/ipfs-devnet.sh start)")

    targets = []
    for size_name, figures in results.items():
        floor, get, fetch = (figures[k] for k in ("floor_read_sha256", "localstore_get", "p2p_fetch"))
        assert floor is not None and get is not None and fetch is not None
        targets.append(target(f"localstore_get_share_of_floor_{size_name}", get / floor, 0.5, ">="))
        targets.append(target(f"p2p_direct_fetch_MBps_{size_name}", fetch, 20.0, ">="))
    print_targets(targets)
    path = write_results(
        "transport",
        {
            "quick": args.quick,
            "repeats": repeats,
            "unit": "MB/s (1 MB = 10^6 bytes), median",
            "ipfs_daemon": IPFS_API if ipfs is not None else None,
            "machine": machine(),
            "results": results,
        },
        targets,
    )
    print(f"wrote {path}")


class _P2PPair:
    """Two libp2p hosts on loopback: ``server`` serves ``store``, ``client`` fetches from it."""

    def __init__(self, root: Path, store: LocalStore) -> None:
        from eth_account import Account

        from codecoop.p2p import P2PConfig, P2PHost

        self.server = P2PHost(P2PConfig(federation="bench", identity_path=root / "server.key"), Account.create(), store=store).start()
        self.client = P2PHost(P2PConfig(federation="bench", identity_path=root / "client.key"), Account.create()).start()
        self.client.connect(self.server.addrs[0])

    def fetch(self, cid: str) -> bytes:
        return self.client.fetch(self.server.peer_id, cid)

    def stop(self) -> None:
        self.client.stop()
        self.server.stop()


if __name__ == "__main__":
    main()
