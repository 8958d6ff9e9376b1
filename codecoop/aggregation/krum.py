"""Krum and Multi-Krum (Blanchard et al., 2017; El Mhamdi et al., 2018).

Each update is scored by the sum of its squared Euclidean distances (over all tensors) to its
``n - f - 2`` nearest neighbours. Krum returns the best-scored update unchanged; Multi-Krum
averages the ``m`` best (FedAvg weights, as Flower does). Ties are broken by CID. Blanchard et al.
prove resilience to ``f`` Byzantine updates when ``n >= 2f + 3``; the strategies run from
``n >= f + 3`` (at least one neighbour to score against) so small federations still aggregate.

Distances are exact sums of float64 squares folded in a fixed tree, so the choice is the same on
every machine.
"""

from __future__ import annotations

import torch

from codecoop.aggregation import _kernels as K
from codecoop.aggregation.base import ACCUM_DTYPE, StrategyBase, Tensors, Update
from codecoop.aggregation.fedavg import sample_weights, weighted_mean
from codecoop.errors import AggregationError, ConfigError

__all__ = ["Krum", "MultiKrum", "pairwise_sq_distances", "krum_scores"]


def pairwise_sq_distances(updates: list[Update]) -> list[list[float]]:
    """Squared Euclidean distances between every pair of updates, over all their tensors.

    Streams chunk by chunk: each chunk of every update is copied into one float64 block, the
    differences to every later update are squared and folded into per-pair accumulators.
    """
    n = len(updates)
    acc = torch.zeros((n, n, K.FOLD), dtype=ACCUM_DTYPE)
    block = torch.zeros((n, K.CHUNK), dtype=ACCUM_DTYPE)
    diff = torch.empty((max(n - 1, 1), K.CHUNK), dtype=ACCUM_DTYPE)
    for name in sorted(updates[0].tensors):
        inputs = [K.flat(u.tensors[name]) for u in updates]
        for start, stop in K.chunk_ranges(inputs[0].numel()):
            size = stop - start
            for k, x in enumerate(inputs):
                block[k, :size].copy_(x[start:stop])
            if size < K.CHUNK:
                # Zero tails add nothing to the squares, and keep the fold tree the same shape.
                block[:, size:].zero_()
            for i in range(n - 1):
                d = diff[: n - i - 1]
                torch.sub(block[i + 1 :], block[i], out=d)
                d.mul_(d)
                acc[i, i + 1 :].add_(K.fold_(d))
    sums = K.tree_sum(acc).tolist()
    return [[sums[min(i, j)][max(i, j)] if i != j else 0.0 for j in range(n)] for i in range(n)]


def krum_scores(distances: list[list[float]], f: int) -> list[float]:
    """Each update's Krum score: the sum of its ``n - f - 2`` smallest distances to the others."""
    n = len(distances)
    closest = n - f - 2
    scores = []
    for i in range(n):
        nearest = sorted(distances[i][j] for j in range(n) if j != i)[:closest]
        total = 0.0
        for d in nearest:
            total += d
        scores.append(total)
    return scores


class MultiKrum(StrategyBase):
    """Average of the ``m`` best Krum-scored updates (``multikrum``).

    Parameters
    ----------
    f:
        Number of Byzantine updates to tolerate.
    m:
        Updates to keep; ``None`` keeps ``n - f``.
    """

    name = "multikrum"

    def __init__(self, f: int = 1, m: int | None = None) -> None:
        if isinstance(f, bool) or not isinstance(f, int) or f < 0:
            raise ConfigError(f"{self.name}: f must be a non-negative integer, got {f!r}")
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise ConfigError(f"{self.name}: m must be a positive integer, got {m!r}")
        self.f = f
        self.m = m

    def describe(self) -> dict[str, object]:
        return {"f": self.f, "m": self.m}

    def select(self, updates: list[Update]) -> list[Update]:
        """The kept updates, best score first (ties by CID)."""
        n = len(updates)
        if n < self.f + 3:
            raise AggregationError(
                f"{self.name} with f={self.f} needs at least {self.f + 3} updates, got {n}; "
                "lower f or use fedmedian for this round"
            )
        keep = n - self.f if self.m is None else self.m
        if keep > n:
            raise AggregationError(f"{self.name}: cannot keep m={keep} of {n} updates")
        scores = krum_scores(pairwise_sq_distances(updates), self.f)
        order = sorted(range(n), key=lambda i: (scores[i], updates[i].cid))
        return [updates[i] for i in order[:keep]]

    def combine(
        self, updates: list[Update], state: bytes | None, base: Tensors | None
    ) -> tuple[dict[str, torch.Tensor], bytes | None]:
        chosen = sorted(self.select(updates), key=lambda u: u.cid)
        return weighted_mean(chosen, sample_weights([u.num_samples for u in chosen])), None


class Krum(MultiKrum):
    """The single best Krum-scored update, returned unchanged (``krum``)."""

    name = "krum"

    def __init__(self, f: int = 1) -> None:
        super().__init__(f=f, m=1)

    def describe(self) -> dict[str, object]:
        return {"f": self.f}

    def combine(
        self, updates: list[Update], state: bytes | None, base: Tensors | None
    ) -> tuple[dict[str, torch.Tensor], bytes | None]:
        (best,) = self.select(updates)
        return {name: best.tensors[name].clone(memory_format=torch.contiguous_format) for name in sorted(best.tensors)}, None
