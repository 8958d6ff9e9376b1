"""The load round of ``benchmarks/load.py`` in CI, same code: 50 members, 50 updates and all their
50 x 49 votes in one round, on eth-tester (slow) and on a hardhat node (slow, daemon).

Every update must be decided exactly as the quorum rule says (a fifth of the updates harmful, a
seventh of the voters inverting their judgement), the rewards paid must stay within the round's
reservation, and gas must grow no faster than the ballots do (see the benchmark's docstring).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("codecoop_benchmark_load", ROOT / "benchmarks" / "load.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


load = _benchmark()


@pytest.fixture(scope="module")
def embedded() -> dict:
    """One all-to-all round at 4, 16 and 50 members on fresh embedded chains."""
    return {n: load.measure(n) for n in load.SIZES}


def test_a_50_member_round_decides_every_update_as_the_quorum_rule_says(embedded: dict) -> None:
    big = embedded[50]
    # Member 24 both lies and submits a harmful update: it earns nothing, the other 49 claim.
    assert (big.decided, big.votes, big.claims) == (50, 50 * 49, 49)
    assert big.accepted == big.expected == tuple(u for u in range(50) if u % 5 != 4)
    assert all(load.expected_accepted(n, 5_000) == embedded[n].accepted for n in (4, 16))


def test_a_50_member_round_pays_no_more_than_it_reserved(embedded: dict) -> None:
    big = embedded[50]
    assert big.granted <= big.requested and big.minted <= big.granted
    assert big.granted - big.minted < big.claims  # each claim rounds down by less than one wei


def test_gas_grows_no_faster_than_the_ballots(embedded: dict) -> None:
    assert load.linear_excess({n: r.own_gas_per_member for n, r in embedded.items()}) <= 1.1
    assert embedded[50].gas_per_vote <= 1.1 * embedded[4].gas_per_vote
    assert embedded[50].shared_gas_per_member <= 1.1 * embedded[4].shared_gas_per_member
    assert all(r.max_tx_gas < r.block_gas_limit for r in embedded.values())
    projected, _ = load.projected_max_tx(embedded)
    assert projected < embedded[50].block_gas_limit  # a full round of 112 updates fits a block too


@pytest.mark.daemon
def test_the_same_round_on_a_hardhat_node_decides_the_same_and_costs_the_same(embedded: dict) -> None:
    (remote,) = load.on_hardhat((50,), warmup=False)
    assert remote.correct and remote.accepted == embedded[50].accepted
    assert remote.max_tx_gas < remote.block_gas_limit
    assert abs(remote.gas_total - embedded[50].gas_total) <= 0.01 * embedded[50].gas_total
