"""Judging a peer's update on the own held-out data: a paired, sequential test that stops early.

A node judges every other member's update of a round, so evaluation grows with the federation
(N - 1 evaluations per node and round). Most verdicts are clear long before the last held-out
block: a sign-flipped or scaled update raises the loss on every block, a sound one lowers it on
most. The judge therefore scores the update block by block, in a fixed shuffled order, against the
base model's per-block losses (computed once per round), and stops as soon as the paired mean
delta is further from the approval threshold than ``z`` standard errors.

The standard error carries the finite-population correction ``sqrt((N - n) / (N - 1))``: the
blocks are a fixed set of ``N`` drawn without replacement, so after all of them the estimate is
exact and the test always ends with the same figure a full evaluation gives. Paired deltas
(base minus update, block by block) vary far less than the losses themselves, which is what
makes early stopping safe with only a few blocks.

The reported ``lossDelta`` is the mean over the blocks scored: unbiased, but from fewer blocks
when the verdict is clear early (docs/NODE.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codecoop.errors import ConfigError

__all__ = ["PairedVerdict", "SequentialTest", "block_order", "paired_delta"]


@dataclass(frozen=True)
class SequentialTest:
    """When the judge may stop scoring blocks.

    Attributes
    ----------
    z:
        Stop once ``|mean delta - threshold| >= z * standard error``; ``0`` scores every block.
    min_blocks:
        Never decide on fewer blocks than this (the variance estimate needs a few).
    chunk:
        Blocks scored between two looks at the test.
    """

    z: float = 3.0
    min_blocks: int = 4
    chunk: int = 4

    def __post_init__(self) -> None:
        if not (self.z >= 0 and math.isfinite(self.z)):
            raise ConfigError(f"evaluation.early_stop_z must be a finite number >= 0 (0: no early stop), got {self.z!r}")
        if self.min_blocks < 2:
            raise ConfigError(f"evaluation.min_blocks must be at least 2, got {self.min_blocks!r}")
        if self.chunk < 1:
            raise ConfigError(f"the chunk of blocks between two looks must be at least 1, got {self.chunk!r}")


@dataclass(frozen=True)
class PairedVerdict:
    """The outcome of judging one update.

    ``delta`` is the mean of ``base - update`` per-block losses (nats) over the ``blocks``
    scored out of ``total``; ``approve`` says whether it reached the threshold.
    """

    delta: float
    approve: bool
    blocks: int
    total: int

    @property
    def stopped_early(self) -> bool:
        return self.blocks < self.total


def block_order(n_blocks: int, seed: int = 0) -> np.ndarray:
    """The fixed shuffled order in which blocks are scored (consecutive blocks are correlated)."""
    return np.random.default_rng(seed).permutation(n_blocks)


def paired_delta(
    base_losses: np.ndarray,
    score: Callable[[np.ndarray], np.ndarray],
    threshold: float,
    test: SequentialTest = SequentialTest(),
    order: np.ndarray | None = None,
) -> PairedVerdict:
    """Score an update until its verdict against ``threshold`` (nats) is clear.

    Parameters
    ----------
    base_losses:
        The round base's loss on every held-out block.
    score:
        Loss of the update on the listed blocks (a :class:`codecoop.training.BlockScorer`).
    threshold:
        Approve when the mean delta (base minus update) is at least this.
    test:
        When to stop.
    order:
        Order in which blocks are scored; default :func:`block_order`.
    """
    base = np.asarray(base_losses, dtype=np.float64)
    total = len(base)
    if order is None:
        order = block_order(total)
    deltas = np.empty(0, dtype=np.float64)
    first = min(total, max(test.min_blocks, test.chunk)) if test.z > 0 else total
    n = 0
    while n < total:
        take = order[n : (first if n == 0 else n + test.chunk)]
        scored = np.asarray(score(take), dtype=np.float64)
        deltas = np.concatenate([deltas, base[take] - scored])
        n = len(deltas)
        if not np.all(np.isfinite(deltas)):
            return PairedVerdict(-math.inf, False, n, total)
        if test.z > 0 and n < total and _decided(deltas, total, threshold, test.z):
            break
    mean = float(deltas.mean())
    return PairedVerdict(mean, mean >= threshold, n, total)


def _decided(deltas: np.ndarray, total: int, threshold: float, z: float) -> bool:
    n = len(deltas)
    if n < 2:
        return False
    fpc = math.sqrt((total - n) / (total - 1))
    se = float(deltas.std(ddof=1)) / math.sqrt(n) * fpc
    return abs(float(deltas.mean()) - threshold) >= z * se
