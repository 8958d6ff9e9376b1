"""Print the SHA-256 of every strategy's output bytes; run in a fresh process by the tests.

Usage: ``python probe.py SHUFFLE_SEED THREADS``. The updates are the same in every run; only
their order and torch's thread count change.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregation.data import make_updates  # noqa: E402
from codecoop.aggregation import Aggregate, Update, available_strategies, get_strategy  # noqa: E402

CONFIGS: dict[str, dict[str, object]] = {name: {"f": 2} if "krum" in name else {} for name in available_strategies()}
CONFIGS["fedavg+clip+noise"] = {"clip_norm": 20.0, "noise_multiplier": 0.5, "noise_seed": 42}


def digests(updates: list[Update]) -> dict[str, str]:
    """Digest of aggregate bytes (and state) per configuration, two rounds for stateful ones."""
    base = {k: v * 0.5 for k, v in make_updates(1, seed=123, big=True)[0].tensors.items()}
    out = {}
    for label, params in CONFIGS.items():
        strategy = get_strategy(label.split("+")[0], **params)  # type: ignore[arg-type]
        h = hashlib.sha256()
        agg: Aggregate = strategy.aggregate(updates, base=base)
        h.update(agg.to_bytes())
        if agg.state is not None:
            again = strategy.aggregate(updates, agg.state, base=agg.tensors)
            h.update(again.to_bytes() + (again.state or b""))
        out[label] = h.hexdigest()
    return out


def shuffled_updates(seed: int) -> list[Update]:
    ups = make_updates(9, seed=7, big=True)
    random.Random(seed).shuffle(ups)
    return ups


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[2]))
    print(json.dumps(digests(shuffled_updates(int(sys.argv[1]))), sort_keys=True))
