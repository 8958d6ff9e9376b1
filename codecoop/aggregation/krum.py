"""Krum and Multi-Krum (Blanchard et al., 2017; El Mhamdi et al., 2018).

Each update is scored by the sum of its squared Euclidean distances (over all tensors) to its
``n - f - 2`` nearest neighbours. Krum returns the best-scored update unchanged; Multi-Krum
averages the ``m`` best (FedAvg weights, as Flower does). Ties are broken by CID. Blanchard et al.
prove resilience to ``f`` Byzantine updates when ``n >= 2f + 3``; the strategies run from
``n >= f + 3`` (at least one neighbour to score against) so small federations still aggregate.

Distances are built from correctly rounded element-wise operations and a fixed summation tree,
so the choice is the same on every machine.
"""

from __future__ import annotations

import torch

from codecoop.aggregation import _kernels as kernels
from codecoop.aggregation.base import ACCUM_DTYPE, StrategyBase, Tensors, Update
from codecoop.aggregation.fedavg import sample_weights, weighted_mean
from codecoop.errors import AggregationError, ConfigError

__all__ = ["Krum", "MultiKrum", "pairwise_sq_distances", "krum_scores"]


#: Fewest coordinates per block of the distance computation (a power of two).
MIN_BLOCK = 1 << 8


def block_width(n: int) -> int:
    """Coordinates per block for ``n`` updates: the largest power of two with ``(n - 1) * width``
    at most ``CHUNK``, so that every operation touches at most ``CHUNK`` elements. That keeps it in
    cache and on one thread: torch splits larger element-wise operations across threads, and on a
    loaded machine waiting for a descheduled thread costs far more than the split saves. The width
    depends only on ``n``, so the summation tree is the same wherever the same updates are merged.
    """
    width = kernels.CHUNK
    while width > MIN_BLOCK and (n - 1) * width > kernels.CHUNK:
        width //= 2
    return width


def pairwise_sq_distances(updates: list[Update]) -> list[list[float]]:
    """Squared Euclidean distances between every pair of updates, over all their tensors.

    Streams block by block: each block of every update is copied into one stack, the differences
    to every later update are taken and squared in float32 (float64 for float64 adapters), each a
    correctly rounded operation, and added into per-pair float64 accumulators that a fixed
    halving tree sums at the end.
    """
    n = len(updates)
    work = ACCUM_DTYPE if updates[0].tensors[next(iter(updates[0].tensors))].dtype == torch.float64 else torch.float32
    width = block_width(n)
    rows = max(1, kernels.CHUNK // width)
    acc = [torch.zeros((n - i - 1, width), dtype=ACCUM_DTYPE) for i in range(n)]
    block = torch.zeros((n, width), dtype=work)
    diff = torch.empty((rows, width), dtype=work)
    for name in sorted(updates[0].tensors):
        inputs = [kernels.flat(u.tensors[name]) for u in updates]
        numel = inputs[0].numel()
        for start in range(0, numel, width):
            size = min(numel, start + width) - start
            for k, x in enumerate(inputs):
                block[k, :size].copy_(x[start : start + size])
            if size < width:
                # Zero tails add nothing to the squares and keep every block the same shape.
                block[:, size:].zero_()
            for i in range(n - 1):
                for lo in range(i + 1, n, rows):
                    hi = min(n, lo + rows)
                    d = diff[: hi - lo]
                    torch.sub(block[lo:hi], block[i], out=d)
                    d.mul_(d)
                    acc[i][lo - i - 1 : hi - i - 1].add_(d)
    dist = [[0.0] * n for _ in range(n)]
    for i in range(n - 1):
        for j, value in enumerate(kernels.tree_sum(acc[i]).tolist(), start=i + 1):
            dist[i][j] = dist[j][i] = value
    return dist


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
                f"{self.name} with f={self.f} needs at least {self.f + 3} updates, got {n}; lower f or use fedmedian for this round"
            )
        keep = n - self.f if self.m is None else self.m
        if keep > n:
            raise AggregationError(f"{self.name}: cannot keep m={keep} of {n} updates")
        scores = krum_scores(pairwise_sq_distances(updates), self.f)
        order = sorted(range(n), key=lambda i: (scores[i], updates[i].cid))
        return [updates[i] for i in order[:keep]]

    def combine(self, updates: list[Update], state: bytes | None, base: Tensors | None) -> tuple[dict[str, torch.Tensor], bytes | None]:
        chosen = sorted(self.select(updates), key=lambda u: u.cid)
        return weighted_mean(chosen, sample_weights([u.num_samples for u in chosen])), None


class Krum(MultiKrum):
    """The single best Krum-scored update, returned unchanged (``krum``)."""

    name = "krum"

    def __init__(self, f: int = 1) -> None:
        super().__init__(f=f, m=1)

    def describe(self) -> dict[str, object]:
        return {"f": self.f}

    def combine(self, updates: list[Update], state: bytes | None, base: Tensors | None) -> tuple[dict[str, torch.Tensor], bytes | None]:
        (best,) = self.select(updates)
        return {name: best.tensors[name].clone(memory_format=torch.contiguous_format) for name in sorted(best.tensors)}, None
