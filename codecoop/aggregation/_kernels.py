"""Streaming building blocks shared by the strategies.

Every tensor is processed in chunks of ``CHUNK`` elements so that the working buffers stay
in the CPU cache: an aggregation reads each input once and writes the output once, and never holds
a second copy of all adapters. Only separate, correctly rounded IEEE operations are used (copy,
add, subtract, multiply, divide, square root, minimum, maximum), never a fused multiply-add or a
library reduction, because those change their last bit with the CPU's vector width or with the
number of threads. Sums over elements use a fixed halving tree (:func:`fold_`, :func:`tree_sum`),
so their rounding depends only on ``CHUNK`` and ``FOLD``, which are part of the determinism rule.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import torch

from codecoop.aggregation.base import ACCUM_DTYPE

__all__ = [
    "CHUNK",
    "FOLD",
    "chunk_ranges",
    "flat",
    "fold_",
    "tree_sum",
    "sorting_network",
    "SortedStack",
    "accum_buffer",
    "sum_dtype",
    "weighted_sum",
]

#: Elements per chunk (a power of two): 128 KiB of float64, small enough for L2 on any x86 or ARM core.
CHUNK = 1 << 14
#: Width that per-chunk partial sums are folded to before they are accumulated (a power of two).
FOLD = 256


def chunk_ranges(numel: int) -> Iterator[tuple[int, int]]:
    """Yield ``(start, stop)`` covering ``range(numel)`` in steps of ``CHUNK``."""
    for start in range(0, numel, CHUNK):
        yield start, min(numel, start + CHUNK)


def flat(t: torch.Tensor) -> torch.Tensor:
    """A 1-D view of ``t`` (a copy only when ``t`` is not contiguous)."""
    return t.reshape(-1)


def fold_(x: torch.Tensor, width: int = FOLD) -> torch.Tensor:
    """Halve the last dimension of ``x`` (a power of two) in place, adding the upper half onto the
    lower, until it is ``width`` wide; return that view. The addition order is fixed by the shape."""
    size = x.shape[-1]
    while size > width:
        size //= 2
        x[..., :size].add_(x[..., size : 2 * size])
    return x[..., :width]


def tree_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over the last dimension (a power of two) by the same fixed halving tree; destroys ``x``."""
    return fold_(x, 1)[..., 0]


@functools.lru_cache(maxsize=256)
def sorting_network(n: int, wanted: tuple[int, ...] | None = None) -> tuple[tuple[int, int], ...]:
    """Comparators ``(i, j)``, ``i < j``, of Batcher's odd-even merge sort on ``n`` wires.

    After the network, wire ``k`` holds the ``k``-th smallest value. The network for the next power
    of two is generated and comparators touching the missing wires are dropped, which is exact
    because those wires would hold +inf and never move. With ``wanted``, comparators that cannot
    influence the wanted output wires are dropped too (a median needs far fewer than a full sort).
    """
    size = 1
    while size < n:
        size *= 2
    comps: list[tuple[int, int]] = []

    def merge(lo: int, hi: int, r: int) -> None:
        step = r * 2
        if step < hi - lo:
            merge(lo, hi, step)
            merge(lo + r, hi, step)
            comps.extend((i, i + r) for i in range(lo + r, hi - r, step))
        else:
            comps.append((lo, lo + r))

    def sort(lo: int, hi: int) -> None:
        if hi - lo >= 1:
            mid = lo + (hi - lo) // 2
            sort(lo, mid)
            sort(mid + 1, hi)
            merge(lo, hi, 1)

    sort(0, size - 1)
    network = [(i, j) for i, j in comps if j < n]
    if wanted is None:
        return tuple(network)
    needed = set(wanted)
    kept: list[tuple[int, int]] = []
    for i, j in reversed(network):
        if i in needed or j in needed:
            kept.append((i, j))
            needed.update((i, j))
    return tuple(reversed(kept))


class SortedStack:
    """Chunk-wise coordinate sort of ``n`` flat tensors of one dtype with a sorting network.

    ``load(start, stop)`` copies one chunk of every input into the working rows and sorts each
    coordinate across the inputs; ``row(k)`` is then the ``k``-th smallest value per coordinate.
    Minimum and maximum are exact, so sorting in the inputs' own dtype loses nothing; -0.0 is
    turned into +0.0 on load, so equal values are bit-identical and the result cannot depend on
    which of two equal zeros a vector unit returns.
    """

    def __init__(self, inputs: list[torch.Tensor], wanted: tuple[int, ...] | None = None) -> None:
        self.inputs = inputs
        n = len(inputs)
        self.network = sorting_network(n, wanted)
        dtype = inputs[0].dtype
        # n rows plus two spares: a comparator writes min and max into the spares and swaps buffers.
        self.buffers = [torch.empty(CHUNK, dtype=dtype) for _ in range(n + 2)]
        self.wire = list(range(n))
        self.spare = [n, n + 1]
        self.size = 0

    def load(self, start: int, stop: int) -> None:
        """Load and sort the chunk ``[start, stop)``."""
        self.size = size = stop - start
        buf, wire = self.buffers, self.wire
        for k, x in enumerate(self.inputs):
            torch.add(x[start:stop], 0.0, out=buf[wire[k]][:size])
        for i, j in self.network:
            lo, hi = self.spare
            a, b = buf[wire[i]][:size], buf[wire[j]][:size]
            torch.minimum(a, b, out=buf[lo][:size])
            torch.maximum(a, b, out=buf[hi][:size])
            self.spare = [wire[i], wire[j]]
            wire[i], wire[j] = lo, hi

    def row(self, k: int) -> torch.Tensor:
        """The ``k``-th smallest value of every coordinate of the loaded chunk."""
        return self.buffers[self.wire[k]][: self.size]


def accum_buffer(size: int = CHUNK) -> torch.Tensor:
    """A working buffer in the accumulation dtype."""
    return torch.empty(size, dtype=ACCUM_DTYPE)


def sum_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype a weighted sum of tensors of ``dtype`` accumulates in: float32, or float64 for float64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def weighted_sum(
    out: torch.Tensor, tmp: torch.Tensor, inputs: list[torch.Tensor], weights: list[float], start: int, stop: int
) -> torch.Tensor:
    """``sum_k inputs[k][start:stop] * weights[k]``, ``k`` ascending, into ``out``.

    ``out`` is a view of ``stop - start`` elements and ``tmp`` a buffer of at least as many, both of
    ``sum_dtype`` of the inputs. Each product is rounded once in that dtype and added in a fixed
    order: the weighted sum is the one hot loop of FedAvg, and float32 arithmetic on float32
    adapters does it at memory speed with the precision of the adapters themselves.
    """
    size = stop - start
    t = tmp[:size]
    direct = inputs[0].dtype == out.dtype
    for k, (x, w) in enumerate(zip(inputs, weights, strict=True)):
        dst = out if k == 0 else t
        if direct:
            torch.mul(x[start:stop], w, out=dst)
        else:
            # Half-precision inputs are widened first, so the product is not rounded to 8 or 11 bits.
            dst.copy_(x[start:stop])
            dst.mul_(w)
        if k:
            out.add_(t)
    return out
