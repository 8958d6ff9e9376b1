"""Same inputs in any order, in any process, with any thread count: the same bytes."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from codecoop.aggregation import available_strategies, get_strategy

from .data import make_updates
from .probe import digests, shuffled_updates

PROBE = Path(__file__).with_name("probe.py")


@pytest.mark.parametrize("name", available_strategies())
def test_output_bytes_do_not_depend_on_input_order(name: str) -> None:
    ups = make_updates(8, seed=90, big=True)
    base = {k: torch.zeros_like(v) for k, v in ups[0].tensors.items()}
    params = {"f": 2} if "krum" in name else {}
    first = get_strategy(name, **params).aggregate(ups, base=base)
    for seed in range(3):
        again = list(ups)
        random.Random(seed).shuffle(again)
        other = get_strategy(name, **params).aggregate(again, base=base)
        assert other.to_bytes() == first.to_bytes()
        assert other.state == first.state


def test_output_bytes_are_identical_across_processes_and_thread_counts() -> None:
    runs = [
        subprocess.run([sys.executable, str(PROBE), str(seed), str(threads)], capture_output=True, text=True, check=True, timeout=120)
        for seed, threads in ((1, 1), (2, 2))
    ]
    first, second = (json.loads(r.stdout) for r in runs)
    assert set(first) == set(available_strategies()) | {"fedavg+clip+noise"}
    assert first == second == digests(shuffled_updates(3))
