"""Record the CID test vectors from a real IPFS daemon into ``data/cid_vectors.json``.

Run with the devnet daemon up (``scripts/ipfs-devnet.sh start``)::

    .venv/bin/python -m tests.storage.record_cid_vectors [--api /ip4/127.0.0.1/tcp/5001/http]

The daemon computes every CID itself (``add --cid-version=1 --raw-leaves --chunker=size-262144``);
codecoop's own CID code is not used here, so the vectors are an independent reference. Only seeds,
sizes and CIDs are written: the bytes are regenerated from the seed by :func:`vector_bytes`.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from tests.storage.vectors import VECTORS_PATH, vector_bytes

KIB = 1024
MIB = 1024 * KIB
CHUNK = 256 * KIB
# Sizes around every boundary of the recipe: empty, one byte, one chunk and its neighbours, a
# multi-chunk file, exactly one full node of 174 leaves and one byte more (a second level with a
# lone trailing child), and 200 chunks.
SIZES = [
    0,
    1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    5 * MIB,
    174 * CHUNK,
    174 * CHUNK + 1,
    50 * MIB,
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", default="/ip4/127.0.0.1/tcp/5001/http")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import ipfshttpclient

    client = ipfshttpclient.Client(args.api, timeout=120)
    version = client.version()
    options = {
        "cid-version": 1,
        "raw-leaves": "true",
        "chunker": f"size-{CHUNK}",
        "hash": "sha2-256",
        "cid-base": "base32",
        "pin": "false",
    }
    vectors = []
    for size in SIZES:
        seed = f"size-{size}"
        cid = client.add_bytes(vector_bytes(seed, size), opts=options)
        vectors.append({"seed": seed, "size": size, "cid": cid})
        print(f"{size:>10}  {cid}")
    document = {
        "description": "CIDs computed by a real IPFS daemon for deterministic data",
        "daemon": {"implementation": "js-ipfs (npm ipfs@0.66.1)", "version": version["Version"]},
        "add_options": options,
        "data": "hashlib.shake_256(b'codecoop-cid-vector:' + seed.encode()).digest(size)",
        "vectors": vectors,
    }
    Path(VECTORS_PATH).write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
