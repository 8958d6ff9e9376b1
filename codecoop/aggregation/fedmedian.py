"""FedMedian: the coordinate-wise median of the updates (Yin et al., 2018).

Sample counts are ignored, so a participant cannot buy influence by claiming many samples. For an
even number of updates the median is the mean of the two middle values, as in ``numpy.median``.
Up to ``ceil(n/2) - 1`` arbitrary updates cannot move any coordinate outside the range of the
honest values.
"""

from __future__ import annotations

import torch

from codecoop.aggregation import _kernels as kernels
from codecoop.aggregation.base import StrategyBase, Tensors, Update

__all__ = ["FedMedian"]


class FedMedian(StrategyBase):
    """Coordinate-wise median (``fedmedian``)."""

    name = "fedmedian"

    def combine(self, updates: list[Update], state: bytes | None, base: Tensors | None) -> tuple[dict[str, torch.Tensor], bytes | None]:
        n = len(updates)
        lo, hi = (n - 1) // 2, n // 2
        acc = kernels.accum_buffer()
        out: dict[str, torch.Tensor] = {}
        for name in sorted(updates[0].tensors):
            ref = updates[0].tensors[name]
            stack = kernels.SortedStack([kernels.flat(u.tensors[name]) for u in updates], wanted=(lo, hi))
            result = torch.empty(ref.numel(), dtype=ref.dtype)
            for start, stop in kernels.chunk_ranges(ref.numel()):
                stack.load(start, stop)
                if lo == hi:
                    # An odd count selects one input value: copy it, no rounding at all.
                    result[start:stop].copy_(stack.row(lo))
                    continue
                a = acc[: stop - start]
                a.copy_(stack.row(lo))
                a.add_(stack.row(hi))
                a.mul_(0.5)
                result[start:stop].copy_(a)
            out[name] = result.reshape(ref.shape)
        return out, None
